import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RESULTS_BEGIN, RESULTS_END, replaceResultsSection, resultsSection } from '../lib/results-summary';

const ROOT = path.resolve(__dirname, '..');

test("README's results section is what the committed results/ give (no number typed by hand)", () => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const a = readme.indexOf(RESULTS_BEGIN);
  const b = readme.indexOf(RESULTS_END);
  assert.ok(a >= 0 && b > a, 'README has the results markers');
  assert.equal(readme.slice(a, b + RESULTS_END.length), resultsSection(path.join(ROOT, 'results')), 'run `npm run results:readme`');
});

test('an empty results folder says what has not been run; the markers are required', () => {
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'sgan-results-'));
  const s = resultsSection(empty);
  assert.match(s, /MNIST, quick preset\n\nNot run yet/);
  assert.match(s, /### SVHN\n\nNeeds dataset/);
  assert.equal(replaceResultsSection(`x\n${RESULTS_BEGIN}\nold\n${RESULTS_END}\ny`, 'NEW'), 'x\nNEW\ny');
  assert.throws(() => replaceResultsSection('no markers', 'NEW'), /expected the markers/);
});
