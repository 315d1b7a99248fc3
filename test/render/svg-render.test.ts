/**
 * Every kind of SVG kvpa writes (simulate, simulate --frontier, backtest, up) renders with a real
 * renderer: rsvg-convert (Debian's librsvg2-bin; `bash scripts/install-rsvg.sh`) turns each into a PNG of
 * the SVG's own size. Without rsvg-convert the rendering is skipped with a message, except in CI
 * (CI=true), where it fails. What the SVGs say in their own text needs no renderer, so it is checked
 * either way.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { type SvgKind, svgOf } from '../harness/svg-examples.ts';

const hasRsvg = spawnSync('rsvg-convert', ['--version']).status === 0;
const inCi = process.env.CI === 'true';
const MISSING = 'rsvg-convert is not installed (bash scripts/install-rsvg.sh): SVG rendering not checked';
if (!hasRsvg && !inCi) console.warn(`skipped: ${MISSING}`);

const KINDS: readonly SvgKind[] = ['simulate', 'frontier', 'backtest', 'up'];
/** Each kind made once per file: the lab runs behind simulate and frontier take seconds. */
const made = new Map<SvgKind, string>();
function svgFor(kind: SvgKind): string {
  const svg = made.get(kind) ?? svgOf(kind);
  made.set(kind, svg);
  return svg;
}

/** Width and height from a PNG's IHDR chunk (bytes 16-23), after checking the 8-byte signature. */
function pngSize(png: Buffer): { width: number; height: number } {
  expect(png.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
  expect(png.subarray(12, 16).toString('latin1')).toBe('IHDR');
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

function svgSize(svg: string): { width: number; height: number } {
  const m = /<svg[^>]*\bwidth="(\d+)"[^>]*\bheight="(\d+)"/.exec(svg);
  return { width: Number(m?.[1]), height: Number(m?.[2]) };
}

describe('every SVG kvpa writes: its own text', () => {
  it.each(KINDS)(
    '%s: 960 wide, no NaN, undefined or Infinity in the drawing',
    (kind) => {
      const svg = svgFor(kind);
      expect(svg).not.toMatch(/NaN|undefined|Infinity/);
      expect(svgSize(svg).width).toBe(960);
    },
    60_000,
  );

  it('up labels its time axis in minutes since the start, not as 1970 dates', () => {
    const svg = svgFor('up');
    expect(svg).toContain('minutes since the start');
    expect(svg).not.toContain('1970-');
    // 15 minutes at a 2-minute spacing: 0, 2, …, 14.
    expect(
      svg
        .match(/text-anchor="middle">(\d+)<\/text>/g)
        ?.slice(0, 8)
        .map((t) => Number(/>(\d+)</.exec(t)?.[1])),
    ).toEqual([0, 2, 4, 6, 8, 10, 12, 14]);
  });

  it('frontier labels both axes and names every swept policy in its legend', () => {
    const svg = svgFor('frontier');
    expect(svg).toContain('>GPU-hours</text>');
    expect(svg).toContain('>SLO attainment %</text>');
    for (const policy of ['kvpa', 'knative', 'hpa', 'static']) expect(svg).toContain(`>${policy}</text>`);
    // Every policy with points has a frontier: a step line through solid squares.
    expect(svg.match(/<path d="M/g)).toHaveLength(4);
  });
});

describe.skipIf(!hasRsvg && !inCi)('every SVG kvpa writes renders with rsvg-convert', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'kvpa-render-'));

  it.each(KINDS)(
    '%s: exit 0, a PNG of the SVG size, not blank',
    (kind) => {
      expect(hasRsvg, MISSING).toBe(true);
      const svg = svgFor(kind);
      const svgFile = path.join(dir, `${kind}.svg`);
      const pngFile = path.join(dir, `${kind}.png`);
      writeFileSync(svgFile, svg);
      const r = spawnSync('rsvg-convert', ['--format', 'png', '--output', pngFile, svgFile], {
        encoding: 'utf8',
        timeout: 30_000,
      });
      expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
      const png = readFileSync(pngFile);
      expect(pngSize(png)).toEqual(svgSize(svg));
      // A blank 960-wide white PNG compresses to about 3 KB; the drawings are 20-55 KB.
      expect(png.length).toBeGreaterThan(15_000);
    },
    60_000,
  );
});
