/**
 * The classifiers that judge samples: each maps images in [0,1] (NHWC) to class probabilities, and
 * to features for FID where it has them.
 *
 *  (a) the dataset's encoder E (softmax of its fc4 logits; features = fc3, 256-d). The score over
 *      its probabilities is a "classifier score", never an "Inception score";
 *  (b) Inception-v3 as a tfjs GraphModel read from a local folder (model.json + weight shards; see
 *      docs/inception.md for how to obtain and convert one). Only this one gives an "Inception score",
 *      and its pool features (2048-d) give the usual FID.
 *
 * Pure @tensorflow/tfjs has no file:// loader in Node, so fileSystemHandler implements the IOHandler
 * itself: read model.json and concatenate the weight shards in manifest order.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { Encoder } from '../encoder';

export type ClassifierKind = 'encoder' | 'inception';

export interface ClassifierOutput {
  /** [B, K] class probabilities (rows sum to 1). */
  probs: tf.Tensor2D;
  /** [B, D] features for FID, or null when the classifier exposes none. */
  features: tf.Tensor2D | null;
}

export interface Classifier {
  readonly kind: ClassifierKind;
  /** What the score over its probabilities is called in metrics: 'classifier_score' or 'inception_score'. */
  readonly scoreName: 'classifier_score' | 'inception_score';
  /** What its features are called in metrics ('encoder_fc3', 'inception_pool'), null without features. */
  readonly featureName: string | null;
  readonly description: string;
  /** Probabilities (and features) of a batch; the caller disposes the result. */
  classify(x01: tf.Tensor4D): ClassifierOutput;
  dispose(): void;
}

// ---------------------------------------------------------------------------------------------
// (a) The dataset encoder.

/** The encoder as a judge. Does not own the encoder (the model or the caller disposes it). */
export function encoderClassifier(enc: Encoder, description = 'dataset encoder'): Classifier {
  return {
    kind: 'encoder',
    scoreName: 'classifier_score',
    featureName: 'encoder_fc3',
    description,
    classify(x01) {
      return tf.tidy(() => {
        const features = enc.features(x01);
        return { probs: tf.softmax(enc.logits(features)) as tf.Tensor2D, features };
      });
    },
    dispose() {},
  };
}

// ---------------------------------------------------------------------------------------------
// Loading a GraphModel from disk.

export const MODEL_JSON = 'model.json';

/** A folder holding model.json, or the model.json itself. */
export function modelJsonPath(dirOrFile: string): string {
  return dirOrFile.endsWith('.json') ? dirOrFile : path.join(dirOrFile, MODEL_JSON);
}

export function readModelJson(dirOrFile: string): tf.io.ModelJSON {
  const file = modelJsonPath(dirOrFile);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); see docs/inception.md for how to convert a model`);
  }
  let json: tf.io.ModelJSON;
  try {
    json = JSON.parse(text) as tf.io.ModelJSON;
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (json.modelTopology === undefined) throw new Error(`${file}: no modelTopology; not a tfjs model.json`);
  return json;
}

/** All shards of all weight groups, read and concatenated in manifest order (the order of the specs). */
export function readWeightShards(dir: string, manifest: tf.io.WeightsManifestConfig): ArrayBuffer {
  const buffers: Uint8Array[] = [];
  for (const group of manifest) {
    for (const p of group.paths) {
      const file = path.join(dir, p);
      if (!fs.existsSync(file)) throw new Error(`${path.join(dir, MODEL_JSON)} lists weight shard '${p}', which is not in ${dir}`);
      buffers.push(fs.readFileSync(file));
    }
  }
  const total = buffers.reduce((s, b) => s + b.byteLength, 0);
  const out = new Uint8Array(total);
  let offset = 0;
  for (const b of buffers) {
    out.set(b, offset);
    offset += b.byteLength;
  }
  return out.buffer;
}

/** tf.io.IOHandler reading a converted model (model.json + shards) from the file system. */
export function fileSystemHandler(dirOrFile: string, json?: tf.io.ModelJSON): tf.io.IOHandler {
  const file = modelJsonPath(dirOrFile);
  const dir = path.dirname(file);
  return {
    load: async () => {
      const modelJson = json ?? readModelJson(file);
      return tf.io.getModelArtifactsForJSON(modelJson, async (manifest) => [tf.io.getWeightSpecs(manifest), readWeightShards(dir, manifest)]);
    },
  };
}

export async function loadGraphModelFromDir(dirOrFile: string): Promise<tf.GraphModel> {
  try {
    return await tf.loadGraphModel(fileSystemHandler(dirOrFile));
  } catch (e) {
    throw new Error(`${modelJsonPath(dirOrFile)}: cannot load as a tfjs graph model: ${(e as Error).message}`);
  }
}

// ---------------------------------------------------------------------------------------------
// (b) Inception-v3.

/**
 * The pixel range the network was trained on. Keras/TF-Hub InceptionV3 expects [-1, 1]
 * (keras.applications.inception_v3.preprocess_input: x/127.5 - 1); some exports expect [0, 1]
 * (TF-Hub image modules) or raw [0, 255].
 */
export type InputRange = '-1,1' | '0,1' | '0,255';
export const INPUT_RANGES: readonly InputRange[] = ['-1,1', '0,1', '0,255'];

/** Whether the class output is already a softmax. 'auto' reads the graph (see outputIsSoftmax). */
export type OutputKind = 'auto' | 'probabilities' | 'logits';

export const INCEPTION_SIZE = 299;
export const INCEPTION_POOL_DIM = 2048;

export interface InceptionOptions {
  modelDir: string;
  inputRange?: InputRange;
  /** Side images are resized to (bilinear). */
  size?: number;
  /** Node holding class scores; default: the model's single output, or the non-2048-wide one of two. */
  classNode?: string;
  /** Node holding pool features ([B,2048] or [B,1,1,2048]); default: a 2048-wide model output if any. */
  poolNode?: string;
  outputKind?: OutputKind;
  /** Images per forward pass (Inception activations at 299x299 are large). */
  batchSize?: number;
}

type GraphNode = { name: string; op: string; input?: string[] };

/** Node name without ':index' and the control-input '^'. */
function bareName(name: string): string {
  return name.replace(/^\^/, '').replace(/:\d+$/, '');
}

/**
 * Does `outputName` come from a Softmax? Follows Identity nodes (SavedModel exports end in
 * Identity). null when the graph does not say (node not found).
 */
export function outputIsSoftmax(json: tf.io.ModelJSON, outputName: string): boolean | null {
  const topo = json.modelTopology as { node?: GraphNode[] } | undefined;
  const nodes = new Map((topo?.node ?? []).map((n) => [n.name, n]));
  let node = nodes.get(bareName(outputName));
  for (let hops = 0; node && hops < 16; hops++) {
    if (node.op === 'Softmax') return true;
    if ((node.op === 'Identity' || node.op === 'IdentityN') && node.input && node.input.length > 0) {
      const idx = node.op === 'IdentityN' ? Number(/:(\d+)$/.exec(outputName)?.[1] ?? 0) : 0;
      node = nodes.get(bareName(node.input[Math.min(idx, node.input.length - 1)]));
      continue;
    }
    return false;
  }
  return null;
}

/**
 * Class probabilities from the class output. TF-slim Inception-v3 (TF-Hub classification modules)
 * has 1001 classes, class 0 being "background", which no ImageNet image has: it is dropped and the
 * other 1000 renormalised (= a softmax over the 1000 ImageNet logits), so scores are comparable with
 * 1000-class Keras models. Any other width (1000; 1008 of the 2015 graph the reference code used)
 * is kept whole, as that code does.
 */
export function classProbabilities(out: tf.Tensor2D, isProbabilities: boolean): tf.Tensor2D {
  return tf.tidy(() => {
    let p = isProbabilities ? out : (tf.softmax(out) as tf.Tensor2D);
    if (p.shape[1] === 1001) {
      p = tf.slice(p, [0, 1], [-1, 1000]);
      p = tf.div(p, tf.sum(p, 1, true));
    }
    return p;
  });
}

/** Numeric fallback of 'auto': non-negative rows summing to 1 are taken as probabilities. */
function looksLikeProbabilities(out: tf.Tensor2D): boolean {
  return tf.tidy(() => {
    const min = tf.min(out).dataSync()[0];
    const dev = tf.max(tf.abs(tf.sub(tf.sum(out, 1), 1))).dataSync()[0];
    return min >= 0 && dev < 1e-3;
  });
}

/** Images in [0,1] to the network's input: 3 channels, size x size bilinear, the expected range. */
export function inceptionInput(x01: tf.Tensor4D, size: number, range: InputRange): tf.Tensor4D {
  return tf.tidy(() => {
    let x = x01;
    // Grayscale digits become gray RGB: the network was trained on colour photographs only.
    if (x.shape[3] === 1) x = tf.tile(x, [1, 1, 1, 3]);
    if (x.shape[3] !== 3) throw new Error(`Inception input: images have ${x.shape[3]} channels, expected 1 or 3`);
    // halfPixelCenters matches TF2's tf.image.resize (what Keras preprocessing pipelines use).
    if (x.shape[1] !== size || x.shape[2] !== size) x = tf.image.resizeBilinear(x, [size, size], false, true);
    if (range === '-1,1') return tf.sub(tf.mul(x, 2), 1) as tf.Tensor4D;
    if (range === '0,255') return tf.mul(x, 255) as tf.Tensor4D;
    return x;
  });
}

/** Flatten [B,1,1,D] pool maps to [B,D]. */
function asRows(t: tf.Tensor, what: string): tf.Tensor2D {
  const b = t.shape[0];
  const rest = t.shape.slice(1).reduce((a, c) => a * c, 1);
  const spatial = t.shape.slice(1, -1);
  if (t.rank !== 2 && spatial.some((d) => d !== 1)) throw new Error(`Inception ${what} output has shape [${t.shape}], expected [B, D] or [B, 1, 1, D]`);
  return tf.reshape(t, [b, rest]) as tf.Tensor2D;
}

interface OutputPlan {
  classNode: string;
  poolNode: string | null;
}

/**
 * Which outputs to read. Explicit names win; otherwise with one model output it is the class output,
 * and with several the one 2048 wide is the pool and the first other one the class output
 * (found by running a probe image, since converted graphs often leave output shapes unknown).
 */
function planOutputs(model: tf.GraphModel, opts: InceptionOptions, probe: tf.Tensor4D): OutputPlan {
  const names = model.outputs.map((o) => o.name);
  if (opts.classNode) return { classNode: opts.classNode, poolNode: opts.poolNode ?? null };
  if (names.length === 1) return { classNode: names[0], poolNode: opts.poolNode ?? null };
  const outs = model.execute(probe, names) as tf.Tensor[];
  const widths = outs.map((t) => t.shape[t.shape.length - 1]);
  tf.dispose(outs);
  const poolIdx = widths.findIndex((w) => w === INCEPTION_POOL_DIM);
  const classIdx = widths.findIndex((w, i) => i !== poolIdx);
  if (classIdx < 0) throw new Error(`Inception model: outputs ${names.join(', ')} are all ${INCEPTION_POOL_DIM} wide; pass the class output node name`);
  return { classNode: names[classIdx], poolNode: opts.poolNode ?? (poolIdx >= 0 ? names[poolIdx] : null) };
}

export async function loadInceptionClassifier(opts: InceptionOptions): Promise<Classifier> {
  const json = readModelJson(opts.modelDir);
  let model: tf.GraphModel;
  try {
    model = await tf.loadGraphModel(fileSystemHandler(opts.modelDir, json));
  } catch (e) {
    throw new Error(`${modelJsonPath(opts.modelDir)}: cannot load as a tfjs graph model: ${(e as Error).message}`);
  }
  const size = opts.size ?? INCEPTION_SIZE;
  const range = opts.inputRange ?? '-1,1';
  const batchSize = opts.batchSize ?? 25;
  const inputName = model.inputs[0]?.name;
  if (model.inputs.length !== 1 || !inputName) throw new Error(`${modelJsonPath(opts.modelDir)}: expected one image input, found ${model.inputs.length}`);
  const probe = tf.zeros([1, size, size, 3]) as tf.Tensor4D;
  const plan = planOutputs(model, opts, probe);
  probe.dispose();
  const nodes = plan.poolNode ? [plan.classNode, plan.poolNode] : [plan.classNode];
  let isProbs: boolean | null = opts.outputKind === 'probabilities' ? true : opts.outputKind === 'logits' ? false : null;

  const forward = (x01: tf.Tensor4D): ClassifierOutput => {
    const x = inceptionInput(x01, size, range);
    const outs = model.execute({ [inputName]: x }, nodes) as tf.Tensor | tf.Tensor[];
    x.dispose();
    const [cls, pool] = Array.isArray(outs) ? outs : [outs];
    const scores = asRows(cls, 'class');
    if (isProbs === null) isProbs = outputIsSoftmax(json, plan.classNode) ?? looksLikeProbabilities(scores);
    const probs = classProbabilities(scores, isProbs);
    const features = pool ? asRows(pool, 'pool') : null;
    tf.dispose([cls, scores, ...(pool ? [pool] : [])].filter((t) => t !== probs && t !== features));
    return { probs, features };
  };

  return {
    kind: 'inception',
    scoreName: 'inception_score',
    featureName: plan.poolNode ? 'inception_pool' : null,
    description: `Inception-v3 graph model ${modelJsonPath(opts.modelDir)} (input ${size}x${size}, range [${range}])`,
    classify(x01) {
      // In chunks: a 299x299 batch of 100 through Inception needs gigabytes of activations.
      const parts: ClassifierOutput[] = [];
      for (let s = 0; s < x01.shape[0]; s += batchSize) {
        const chunk = tf.slice(x01, [s, 0, 0, 0], [Math.min(batchSize, x01.shape[0] - s), -1, -1, -1]);
        parts.push(forward(chunk));
        chunk.dispose();
      }
      if (parts.length === 1) return parts[0];
      const probs = tf.concat(parts.map((p) => p.probs)) as tf.Tensor2D;
      const features = parts[0].features ? (tf.concat(parts.map((p) => p.features!)) as tf.Tensor2D) : null;
      tf.dispose(parts.flatMap((p) => (p.features ? [p.probs, p.features] : [p.probs])));
      return { probs, features };
    },
    dispose() {
      model.dispose();
    },
  };
}
