#!/usr/bin/env node
// SPDX-License-Identifier: GPL-2.0
// The package's "install" script: `npm install` of droptrace builds the addon and its BPF
// objects through binding.gyp, with the node-gyp that npm bundles (npm passes its path and
// its nodedir setting, so no Node headers are downloaded). In a development checkout it does
// nothing: scripts/setup.sh builds there with cmake-js, and a second build writing build/ would
// clobber the first.
import { spawnSync } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = realpathSync(join(dirname(fileURLToPath(import.meta.url)), '..'));
if (!root.split(sep).includes('node_modules')) process.exit(0);

// What the build needs beyond node-gyp's own (make, a C++ compiler, python3), said in one line
// rather than as a compiler error deep in node-gyp's log.
const path = `${process.env.PATH ?? ''}:/usr/sbin:/sbin`;
const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { env: { ...process.env, PATH: path }, stdio: 'ignore' }).status === 0;
const missing = [];
if (!has('clang') && !has('clang-14')) missing.push('clang');
if (!has('llvm-strip') && !has('llvm-strip-14')) missing.push('llvm');
if (!has('bpftool')) missing.push('bpftool');
if (!has('pkg-config')) missing.push('pkg-config');
else if (spawnSync('pkg-config', ['--exists', 'libbpf']).status !== 0) missing.push('libbpf-dev');
if (missing.length) {
  console.error(`droptrace install: cannot build the native addon, missing ${missing.join(', ')} (Debian/Ubuntu: apt-get install ${missing.join(' ')})`);
  process.exit(1);
}

const gyp = process.env.npm_config_node_gyp;
const r = gyp
  ? spawnSync(process.execPath, [gyp, 'rebuild'], { cwd: root, stdio: 'inherit' })
  : spawnSync('node-gyp', ['rebuild'], { cwd: root, stdio: 'inherit' });
if (r.error) {
  console.error(`droptrace install: cannot run node-gyp (${r.error.message}): install droptrace with npm, which brings node-gyp`);
  process.exit(1);
}
if (r.status !== 0) {
  console.error(`droptrace install: the native build (node-gyp rebuild in ${root}) failed, see above`);
  process.exit(1);
}
