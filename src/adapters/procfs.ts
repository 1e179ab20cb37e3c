import fs from 'node:fs';
import path from 'node:path';

/** A process that holds a file open. */
export interface Holder {
  pid: number;
  command: string;
  file: string;
}

/** Processes (other than this one) that hold any of `files` open, read from /proc like fuser does. */
export function openFilesOf(files: string[]): Holder[] {
  const wanted = new Map<string, string>();
  for (const f of files) {
    try {
      wanted.set(fs.realpathSync(f), f);
    } catch {
      /* absent files cannot be open */
    }
  }
  if (!wanted.size) return [];
  const out: Holder[] = [];
  let pids: string[] = [];
  try {
    pids = fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid);
  } catch {
    return [];
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = fs.readdirSync(path.join('/proc', pid, 'fd'));
    } catch {
      continue; // gone, or not ours to see
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = fs.readlinkSync(path.join('/proc', pid, 'fd', fd));
      } catch {
        continue;
      }
      const hit = wanted.get(target);
      if (hit) {
        let command = '?';
        try {
          command = fs.readFileSync(path.join('/proc', pid, 'comm'), 'utf8').trim();
        } catch {
          /* ignore */
        }
        out.push({ pid: Number(pid), command, file: hit });
        break;
      }
    }
  }
  return out;
}
