/**
 * Checkpoints: one self-contained file, DIR/checkpoint.bin, written atomically (temp name, fsync,
 * rename), so a kill at any moment leaves either the previous checkpoint or the new one.
 * Layout: "SGANCKPT" | uint32 LE header length | header JSON (utf-8) | zero padding to 4 bytes |
 * float32 little-endian tensor data at the offsets the header lists.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { writeFileAtomic } from './atomic';
import { NamedVariables } from './layers';

const MAGIC = 'SGANCKPT';
export const CHECKPOINT_FILE = 'checkpoint.bin';
export const CHECKPOINT_FORMAT = 'sgan-ts-checkpoint/1';

export interface TensorEntry {
  name: string;
  shape: number[];
  offset: number; // in float32 elements from the start of the data section
}

export interface CheckpointHeader<M = unknown> {
  format: string;
  meta: M;
  tensors: TensorEntry[];
}

export interface LoadedCheckpoint<M = unknown> {
  file: string;
  meta: M;
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
}

export function checkpointPath(dirOrFile: string): string {
  return dirOrFile.endsWith('.bin') ? dirOrFile : path.join(dirOrFile, CHECKPOINT_FILE);
}

/** Serialise named tensors and metadata; reads every tensor back from the backend once. */
export async function encodeCheckpoint<M>(meta: M, vars: Map<string, tf.Tensor>): Promise<Buffer> {
  const entries: TensorEntry[] = [];
  const chunks: Float32Array[] = [];
  let offset = 0;
  for (const [name, v] of vars) {
    const data = (await v.data()) as Float32Array;
    if (!(data instanceof Float32Array)) throw new Error(`checkpoint: ${name} is ${v.dtype}, only float32 is stored`);
    entries.push({ name, shape: v.shape, offset });
    chunks.push(data);
    offset += data.length;
  }
  const header: CheckpointHeader<M> = { format: CHECKPOINT_FORMAT, meta, tensors: entries };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const headLen = 8 + 4 + json.length;
  const pad = (4 - (headLen % 4)) % 4;
  const out = Buffer.alloc(headLen + pad + offset * 4);
  out.write(MAGIC, 0, 'latin1');
  out.writeUInt32LE(json.length, 8);
  json.copy(out, 12);
  const data = new Float32Array(out.buffer, out.byteOffset + headLen + pad, offset);
  entries.forEach((e, i) => data.set(chunks[i], e.offset));
  return out;
}

export async function saveCheckpoint<M>(dir: string, meta: M, vars: Map<string, tf.Tensor>): Promise<string> {
  fs.mkdirSync(dir, { recursive: true });
  const file = checkpointPath(dir);
  writeFileAtomic(file, await encodeCheckpoint(meta, vars));
  return file;
}

export function decodeCheckpoint<M>(buf: Buffer, file: string): LoadedCheckpoint<M> {
  if (buf.length < 12 || buf.toString('latin1', 0, 8) !== MAGIC) {
    throw new Error(`${file}: not an sgan-ts checkpoint (magic "${buf.toString('latin1', 0, Math.min(8, buf.length))}", expected "${MAGIC}")`);
  }
  const jsonLen = buf.readUInt32LE(8);
  if (12 + jsonLen > buf.length) throw new Error(`${file}: truncated header (${buf.length} bytes, header needs ${12 + jsonLen})`);
  const header = JSON.parse(buf.toString('utf8', 12, 12 + jsonLen)) as CheckpointHeader<M>;
  if (header.format !== CHECKPOINT_FORMAT) {
    throw new Error(`${file}: checkpoint format "${header.format}", expected "${CHECKPOINT_FORMAT}"`);
  }
  const headLen = 12 + jsonLen;
  const start = headLen + ((4 - (headLen % 4)) % 4);
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const e of header.tensors) {
    const size = e.shape.reduce((a, b) => a * b, 1);
    const end = start + (e.offset + size) * 4;
    if (end > buf.length) throw new Error(`${file}: truncated: tensor ${e.name} ends at byte ${end}, file has ${buf.length}`);
    // Copy out so the tensors do not pin the whole file buffer.
    tensors.set(e.name, { shape: e.shape, data: new Float32Array(buf.buffer.slice(buf.byteOffset + start + e.offset * 4, buf.byteOffset + end)) });
  }
  return { file, meta: header.meta, tensors };
}

export function loadCheckpoint<M>(dirOrFile: string): LoadedCheckpoint<M> {
  const file = checkpointPath(dirOrFile);
  if (!fs.existsSync(file)) throw new Error(`${file}: no checkpoint found`);
  return decodeCheckpoint<M>(fs.readFileSync(file), file);
}

/** Assign stored values to variables; every variable must be present with its shape. */
export function restoreVariables(ckpt: LoadedCheckpoint, vars: NamedVariables, prefix = ''): void {
  for (const [name, v] of vars) {
    const t = ckpt.tensors.get(prefix + name);
    if (!t) throw new Error(`${ckpt.file}: missing tensor "${prefix + name}"`);
    if (t.shape.length !== v.shape.length || t.shape.some((d, i) => d !== v.shape[i])) {
      throw new Error(`${ckpt.file}: tensor "${prefix + name}" has shape [${t.shape}], expected [${v.shape}]`);
    }
    tf.tidy(() => v.assign(tf.tensor(t.data, t.shape)));
  }
}

export function prefixVars(prefix: string, vars: NamedVariables): NamedVariables {
  const out: NamedVariables = new Map();
  for (const [k, v] of vars) out.set(prefix + k, v);
  return out;
}
