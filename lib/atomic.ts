/**
 * Atomic file writes. Results and checkpoints are read back by later runs (resume, reports), so a
 * crash or Ctrl-C mid-write must never leave a half-written file under the real name: we write a
 * temp file in the same folder (rename is only atomic within one filesystem), fsync it, then
 * rename it over the destination. Readers therefore see either the old file or the new one.
 */
import * as fs from 'fs';
import * as path from 'path';

/** A temp name beside `dest`, unique per process and call, so concurrent writers never collide. */
export function tempPathFor(dest: string): string {
  const rand = Math.random().toString(36).slice(2, 10);
  return `${dest}.tmp-${process.pid}-${rand}`;
}

/** Best-effort fsync of a folder so the rename itself survives a power cut (not possible on every OS). */
function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // Windows and some filesystems refuse to open/fsync folders; the rename is still atomic.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Remove a file if it exists; used to clean up temp files without masking the original error. */
export function removeQuietly(file: string): void {
  try {
    fs.rmSync(file, { force: true });
  } catch {
    // Nothing more we can do; the caller is already reporting the real failure.
  }
}

/**
 * Move a fully written temp file into place: rename over `dest` and fsync the folder.
 * Exported for writers that produce the temp file themselves (e.g. streamed downloads).
 */
export function commitTempFile(tmp: string, dest: string): void {
  fs.renameSync(tmp, dest);
  fsyncDir(path.dirname(dest));
}

/**
 * Write `data` to `dest` atomically (temp file, fsync, rename). Creates the parent folder if
 * needed. On any error the temp file is removed and the error rethrown, naming `dest`.
 */
export function writeFileAtomic(dest: string, data: string | Uint8Array): void {
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  const tmp = tempPathFor(dest);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, 'w');
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    commitTempFile(tmp, dest);
  } catch (e) {
    if (fd !== undefined) {
      try {
        fs.closeSync(fd);
      } catch {
        // Already failing; keep the first error.
      }
    }
    removeQuietly(tmp);
    throw new Error(`writeFileAtomic: ${dest}: ${(e as Error).message}`);
  }
}

/** JSON with 2-space indent and a trailing newline (diff-friendly), written atomically. */
export function writeJsonAtomic(dest: string, value: unknown, indent = 2): void {
  const text = JSON.stringify(value, null, indent);
  if (text === undefined) throw new Error(`writeJsonAtomic: ${dest}: value is not JSON-serialisable`);
  writeFileAtomic(dest, text + '\n');
}
