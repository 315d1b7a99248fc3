/**
 * Renders the README's pictures, one PNG per kind of SVG kvpa writes, beside its SVG in bench/img, with
 * rsvg-convert (`bash scripts/install-rsvg.sh`), the renderer the SVG test uses. Where each SVG comes from:
 *
 * - `conv-x20-out10-s10-kvpa-prefill.svg`: `kvpa simulate`, the README's lab command (a real lab run);
 * - `frontier-conv-x20-out10-s10.svg`: `kvpa simulate --frontier`, the sweep in bench/RESULTS.md
 *   ("Frontiers"; real lab runs);
 * - `backtest-demo-decode.svg`: `kvpa backtest` against a real Prometheus,
 *   `KVPA_DEMO_SVG=bench/img/backtest-demo-decode.svg npx tsx scripts/demo-observe.ts`;
 * - `up-timeline.svg`: `kvpa up`'s report timeline drawn from a generated 15-minute history
 *   (test/harness/svg-examples.ts), written here.
 *
 *   npx tsx bench/pictures.ts
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { upSvg } from '../test/harness/svg-examples.ts';

const img = path.join(import.meta.dirname, 'img');
writeFileSync(path.join(img, 'up-timeline.svg'), upSvg());
const PICTURES = [
  'conv-x20-out10-s10-kvpa-prefill.svg',
  'frontier-conv-x20-out10-s10.svg',
  'backtest-demo-decode.svg',
  'up-timeline.svg',
];
for (const name of PICTURES) {
  const svg = path.join(img, name);
  const png = svg.replace(/\.svg$/, '.png');
  const r = spawnSync('rsvg-convert', ['--format', 'png', '--output', png, svg], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`rsvg-convert failed on ${svg} (bash scripts/install-rsvg.sh)`);
  console.log(`wrote ${path.relative(process.cwd(), png)}`);
}
