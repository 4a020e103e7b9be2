#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Rebuilds everything, whatever the timestamps say.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf build dist
exec scripts/setup.sh
