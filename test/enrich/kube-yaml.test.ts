import { describe, expect, it } from 'vitest';
import { parseYaml } from '../../src/enrich/kube-yaml.js';

describe('parseYaml (the kubeconfig subset)', () => {
  it('reads a kubeconfig as kubectl writes it', () => {
    const text = `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: LS0tLS1CRUdJTg==
    server: https://10.0.0.1:6443
  name: lab
contexts:
- context:
    cluster: lab
    namespace: "kube-system"   # a comment
    user: admin
  name: admin@lab
current-context: admin@lab
kind: Config
preferences: {}
users:
- name: admin
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      args:
      - get-token
      - --cluster-name
      - 'it''s'
      command: aws
      env: null
      provideClusterInfo: false
    token: "abc#def"
`;
    expect(parseYaml(text)).toEqual({
      apiVersion: 'v1',
      clusters: [{ cluster: { 'certificate-authority-data': 'LS0tLS1CRUdJTg==', server: 'https://10.0.0.1:6443' }, name: 'lab' }],
      contexts: [{ context: { cluster: 'lab', namespace: 'kube-system', user: 'admin' }, name: 'admin@lab' }],
      'current-context': 'admin@lab',
      kind: 'Config',
      preferences: {},
      users: [
        {
          name: 'admin',
          user: {
            exec: {
              apiVersion: 'client.authentication.k8s.io/v1beta1',
              args: ['get-token', '--cluster-name', "it's"],
              command: 'aws',
              env: null,
              provideClusterInfo: false,
            },
            token: 'abc#def',
          },
        },
      ],
    });
  });

  it('reads indented sequences, nested sequences, flow lists, numbers and JSON', () => {
    expect(parseYaml('a:\n  - x: 1\n    y: [1, "two", three]\n  -\n    - 2.5\n---\nb: ~\n')).toEqual({ a: [{ x: 1, y: [1, 'two', 'three'] }, [2.5]], b: null });
    expect(parseYaml('{"a": [1]}')).toEqual({ a: [1] });
    expect(parseYaml('# nothing\n')).toBeNull();
  });

  it('refuses what it does not support, with the line', () => {
    const err = (t: string) => {
      try {
        parseYaml(t);
      } catch (e) {
        return (e as Error).message;
      }
      return 'no error';
    };
    expect(['a: |\n  x\n', 'a: &x 1\n', 'a:\n\tb: 1\n', 'a: 1\n  b: 2\n', 'a: 1\nbare words\n', 'a: "x\n'].map(err)).toEqual([
      'line 1: block scalars (| and >) are not supported',
      'line 1: anchors, aliases and tags are not supported',
      'line 2: tabs are not allowed for indentation',
      'line 2: unexpected indentation',
      'line 2: expected "key: value"',
      'line 1: unterminated double-quoted string',
    ]);
    expect(err('{"a": }')).toMatch(/^line 1: not valid JSON: /);
  });
});
