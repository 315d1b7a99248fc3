// The Grafana contract server lives in src/stack (kvpa up sends annotations to it); tests import it from here.
export * from '../src/stack/grafana-contract-server.ts';
