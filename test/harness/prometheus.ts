// The Prometheus launcher lives in src/stack (the live stack uses it too); tests import it from here.
export * from '../../src/stack/prometheus.ts';
