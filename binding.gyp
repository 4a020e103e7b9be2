# SPDX-License-Identifier: GPL-2.0
# The node-gyp build: what `npm install` of the package runs (through scripts/install.mjs).
# Development and CI build with cmake-js (native/CMakeLists.txt, via scripts/setup.sh); the two
# must make the same addon, which test/native/build.e2e.test.ts checks by building both.
# Sources and BPF objects are globbed, so a new native/*.cc or probes/*.bpf.c needs no edit here.
{
  'targets': [
    {
      'target_name': 'droptrace',
      'sources': ['<!@(ls native/*.cc)'],
      'defines': ['NAPI_VERSION=8', 'NAPI_DISABLE_CPP_EXCEPTIONS'],
      'include_dirs': [
        '<!(node -p "require(\'node-addon-api\').include_dir")',
        'build/gen',
        'probes',
        '<!@(pkg-config --cflags-only-I libbpf | sed "s/-I//g")',
      ],
      # Debian's libbpf.a is not PIC: link the shared library, as CMakeLists.txt does.
      'libraries': ['<!@(pkg-config --libs libbpf)', '-pthread'],
      # node's common.gypi turns C++ exceptions and RTTI off; CMake's defaults keep them on,
      # and the same code must compile in both.
      'cflags_cc!': ['-fno-exceptions', '-fno-rtti'],
      'actions': [
        {
          'action_name': 'bpf_skeletons',
          'inputs': [
            'scripts/bpf-build.sh',
            '<!@(ls probes/*.bpf.c probes/*.h probes/gen-vmlinux.sh)',
          ],
          'outputs': ['<!@(sh scripts/bpf-build.sh --outputs build/gen)'],
          'action': ['sh', 'scripts/bpf-build.sh', 'build/gen'],
          'message': 'BPF objects, skeletons and vmlinux.h (scripts/bpf-build.sh)',
        },
      ],
    },
  ],
}
