// Memory of another process, from Linux's /proc/<pid>/status: VmHWM is the peak resident set since it started,
// which is what a container memory limit has to fit.
import { readFileSync } from 'node:fs';

export interface ProcessMemory {
  rssMb: number;
  peakRssMb: number;
}

export function processMemory(pid: number): ProcessMemory | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined; // not Linux, or the process has exited
  }
  const kb = (key: string) => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
    return m ? Number(m[1]) / 1024 : NaN;
  };
  return { rssMb: kb('VmRSS'), peakRssMb: kb('VmHWM') };
}
