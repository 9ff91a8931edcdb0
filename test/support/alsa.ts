// Shared by the microphone tests: the fake devices (alsa-lib's file plugin
// over null, reading known waves) and the fault-injecting alsa-lib wrapper.
//
// alsa-lib reads ALSA_CONFIG_PATH when it first opens a PCM, and again at
// every snd_pcm_open after that (checked with alsa-lib 1.2.8: a PCM defined
// only in a configuration named later opens). Setting it here, on import and
// before any test opens a device, is therefore enough; the addon never calls
// alsa-lib before a capture starts or the device list is asked for.
import { execFileSync } from "child_process";
import fs from "fs";
import os from "os";
import path from "path";
import { AlsaCapture, AlsaCaptureOptions, AudioChunk, CaptureState } from "../../lib/capture";
import { ROOT, writeAlsaFixtures } from "../fakes/alsa-wave";
import { devplaneThreads, eventually } from "./rings";

export const FIXTURES = path.join(os.tmpdir(), `devplane-alsa-${process.pid}`);
export const ALSA_CONFIG = writeAlsaFixtures(FIXTURES);
process.env.ALSA_CONFIG_PATH = ALSA_CONFIG;
process.on("exit", () => fs.rmSync(FIXTURES, { recursive: true, force: true }));

const FAKE_SOURCE = path.join(ROOT, "test", "fakes", "fake-asound.c");
export const FAKE_LIBRARY = path.join(ROOT, "dist", "test", "fakes", "libdevplane-fake-asound.so");

/** Builds the fault-injecting wrapper around the real alsa-lib (once per source change). */
export function buildFakeAsound(): string {
  const fresh = fs.existsSync(FAKE_LIBRARY) && fs.statSync(FAKE_LIBRARY).mtimeMs >= fs.statSync(FAKE_SOURCE).mtimeMs;
  if (!fresh) {
    fs.mkdirSync(path.dirname(FAKE_LIBRARY), { recursive: true });
    execFileSync("cc", ["-O2", "-std=gnu99", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-o", FAKE_LIBRARY, FAKE_SOURCE, "-ldl"]);
  }
  return FAKE_LIBRARY;
}

export interface Recorded {
  capture: AlsaCapture;
  chunks: AudioChunk[];
  states: CaptureState[];
  errors: Error[];
}

/** Starts a capture that records everything it emits. */
export function record(options: AlsaCaptureOptions): Recorded {
  const capture = new AlsaCapture(options);
  const r: Recorded = { capture, chunks: [], states: [], errors: [] };
  capture.on("chunk", (c) => r.chunks.push(c));
  capture.on("state", (s) => r.states.push(s));
  capture.on("error", (e) => r.errors.push(e));
  capture.start();
  return r;
}

export async function chunksFrom(r: Recorded, count: number, what = `${count} chunks`): Promise<AudioChunk[]> {
  await eventually(() => r.chunks.length >= count, what);
  return r.chunks.slice(0, count);
}

/** Files in this process's fd table that point at `file`. */
export function openCount(file: string): number {
  let n = 0;
  for (const fd of fs.readdirSync("/proc/self/fd")) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${fd}`) === file) n++;
    } catch {
      /* closed meanwhile */
    }
  }
  return n;
}

/** Threads named by the capture code (pthread_setname_np "dp-alsa"). */
export const captureThreads = (): number => devplaneThreads("dp-alsa");

export const near = (actual: number, expected: number, tolerance: number, what: string): void => {
  if (!(Math.abs(actual - expected) <= tolerance)) {
    throw new Error(`${what}: ${actual} is not within ${tolerance} of ${expected}`);
  }
};

/**
 * The tests that run in child processes (test/fakes/alsa-*.child.ts), each
 * with an alsa-lib of its own or a paced device; the parent test checks each
 * one passed.
 */
export const CHILD_TESTS = {
  faults: {
    overrun: "recovers from overruns with snd_pcm_recover, counts them in msg.audio.overruns and keeps going",
    unplug: "shows an unplug in red with a disconnected message, and resumes when the device returns",
    busy: "names the busy device and the process holding it",
    busySelf: "says when this Node-RED holds the device through a node with other settings",
    batch: "with a batch, wakes once per period and hands over that many chunks, sample for sample",
    batchOverrun: "hands over the chunks held for a batch before recovering from an overrun",
  },
  examples: {
    levelMqtt: "example alsa-level-mqtt publishes the microphone's level and state to the broker",
    toRing: "example alsa-to-ring fills the ring for a speech program and reports speech",
  },
  noLibrary: {
    node: "says alsa-lib is missing on the node only; shm-publish in the same flow still works",
    engine: "fails a capture with ENOLIB and an install hint, and lists no devices",
  },
} as const;
