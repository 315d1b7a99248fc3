/**
 * The frontiers as one plain SVG: GPU-hours across, SLO attainment up; every swept point of a policy as a dot
 * and its Pareto frontier as a step line through solid squares in the policy's colour; dashed horizontal lines at the table's SLO
 * levels. The SLO axis starts at the lowest frontier point's attainment (at most 90 %), where the choices are.
 */
import { escapeXml } from '../report/svg-timeline.ts';
import { type FrontierPoint, paretoFrontier, sloLevels } from './frontier.ts';

const WIDTH = 960;
const HEIGHT = 560;
const LEFT = 70;
const RIGHT = 190;
const TOP = 40;
const BOTTOM = 50;
const COLORS = [
  '#1f77b4',
  '#d62728',
  '#2ca02c',
  '#ff7f0e',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#7f7f7f',
  '#bcbd22',
  '#17becf',
  '#393b79',
  '#637939',
  '#000000',
];

export function frontierSvg(points: readonly FrontierPoint[], title: string): string {
  const policies = [...new Set(points.map((p) => p.policy))];
  const frontiers = new Map(policies.map((p) => [p, paretoFrontier(points.filter((q) => q.policy === p))]));
  const finite = points.filter((p) => Number.isFinite(p.sloAttainment) && Number.isFinite(p.gpuHours));
  const maxGpu = Math.max(1, ...finite.map((p) => p.gpuHours)) * 1.05;
  const lowest = Math.min(0.9, ...[...frontiers.values()].flat().map((p) => p.sloAttainment));
  const minSlo = Math.max(0, Math.floor(lowest * 20) / 20);
  const plotW = WIDTH - LEFT - RIGHT;
  const plotH = HEIGHT - TOP - BOTTOM;
  const x = (g: number) => LEFT + (g / maxGpu) * plotW;
  const y = (s: number) => TOP + plotH - ((Math.max(minSlo, s) - minSlo) / (1 - minSlo)) * plotH;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" font-family="sans-serif" font-size="11">`,
    `<title>${escapeXml(title)}</title>`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${LEFT}" y="22" font-size="14" font-weight="bold">${escapeXml(title)}</text>`,
    `<rect x="${LEFT}" y="${TOP}" width="${plotW}" height="${plotH}" fill="none" stroke="#bbb"/>`,
  ];
  for (let i = 0; i <= 5; i++) {
    const g = (maxGpu * i) / 5;
    parts.push(`<text x="${x(g)}" y="${TOP + plotH + 16}" text-anchor="middle">${g.toFixed(0)}</text>`);
    const s = minSlo + ((1 - minSlo) * i) / 5;
    parts.push(`<text x="${LEFT - 6}" y="${y(s) + 4}" text-anchor="end">${(100 * s).toFixed(1)}</text>`);
  }
  parts.push(`<text x="${LEFT + plotW / 2}" y="${HEIGHT - 12}" text-anchor="middle">GPU-hours</text>`);
  parts.push(
    `<text x="16" y="${TOP + plotH / 2}" transform="rotate(-90 16 ${TOP + plotH / 2})" text-anchor="middle">SLO attainment %</text>`,
  );
  const staticPoint = points.find((p) => p.policy === 'static');
  sloLevels(staticPoint?.sloAttainment).forEach((level, i) => {
    if (level.level < minSlo) return;
    // Labels alternate ends: static's level and 99 % are often a hair apart.
    const labelX = i % 2 === 0 ? LEFT + 4 : LEFT + plotW - 4;
    parts.push(
      `<line x1="${LEFT}" x2="${LEFT + plotW}" y1="${y(level.level)}" y2="${y(level.level)}" stroke="#999" stroke-dasharray="4 4"/>`,
      `<text x="${labelX}" y="${y(level.level) + (i % 2 === 0 ? 12 : -3)}" text-anchor="${i % 2 === 0 ? 'start' : 'end'}" fill="#666">${escapeXml(level.label)}</text>`,
    );
  });
  policies.forEach((policy, i) => {
    const color = COLORS[i % COLORS.length] as string;
    for (const p of finite.filter((q) => q.policy === policy)) {
      parts.push(
        `<circle cx="${x(p.gpuHours).toFixed(1)}" cy="${y(p.sloAttainment).toFixed(1)}" r="2.5" fill="${color}" fill-opacity="0.45"/>`,
      );
    }
    const front = (frontiers.get(policy) ?? []).filter((p) => Number.isFinite(p.gpuHours));
    if (front.length > 0) {
      let d = '';
      front.forEach((p, j) => {
        const px = x(p.gpuHours).toFixed(1);
        const py = y(p.sloAttainment).toFixed(1);
        d += j === 0 ? `M${px},${py}` : ` H${px} V${py}`;
      });
      parts.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"/>`);
      // Frontier points are drawn solid, so a one-point frontier still shows.
      for (const p of front) {
        parts.push(
          `<rect x="${(x(p.gpuHours) - 3).toFixed(1)}" y="${(y(p.sloAttainment) - 3).toFixed(1)}" width="6" height="6" fill="${color}"/>`,
        );
      }
    }
    const ly = TOP + 14 + i * 16;
    parts.push(
      `<line x1="${WIDTH - RIGHT + 12}" x2="${WIDTH - RIGHT + 32}" y1="${ly - 4}" y2="${ly - 4}" stroke="${color}" stroke-width="2"/>`,
      `<text x="${WIDTH - RIGHT + 38}" y="${ly}">${escapeXml(policy)}</text>`,
    );
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
