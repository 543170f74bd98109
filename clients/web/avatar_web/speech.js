// Speech whose timing the page knows: a recording played through WebAudio into the outgoing track
// (instead of the microphone), with the instant each of its samples entered the track.
//
// Mapping WebAudio's clock onto performance.now(): the render thread processes audio in blocks;
// `context.currentTime` is the end of the block processed last. Polled often, the smallest
// `performance.now() - currentTime` is the moment a block was rendered, that is when its samples
// reached the MediaStreamAudioDestinationNode and so the outgoing track (within a render burst,
// a few ms).
"use strict";

import { CLOCK_RATE_HZ } from "./measure.js";

const ONSET_LEVEL = 0.1; // engine/live/onsets.py: the server applies the same rule to what it hears
const ONSET_QUIET_S = 0.25;
const START_DELAY_S = 0.3;
const POLL_MS = 20;

export class SpeechSource {
  // audioData: the encoded file (ArrayBuffer: WAV, MP3, ...); loop: play it again and again;
  // audible: also play it on this device's speakers.
  static async open(audioData, { loop = true, audible = false } = {}) {
    const context = new AudioContext({ latencyHint: "interactive" });
    const buffer = await context.decodeAudioData(audioData);
    return new SpeechSource(context, buffer, { loop, audible });
  }

  constructor(context, buffer, { loop, audible }) {
    this.context = context;
    this.buffer = buffer;
    this.loop = loop;
    this.destination = context.createMediaStreamDestination();
    this.source = context.createBufferSource();
    this.source.buffer = buffer;
    this.source.loop = loop;
    this.source.connect(this.destination);
    if (audible) this.source.connect(context.destination);
    this.track = this.destination.stream.getAudioTracks()[0];
    this.bufferOnsets = onsets(buffer.getChannelData(0), buffer.sampleRate);
    this.startContextS = null;
    this.offsetMs = Infinity; // performance.now() - currentTime * 1000, at its smallest
    this.poller = setInterval(() => this.poll(), POLL_MS);
  }

  start() {
    this.poll();
    this.startContextS = this.context.currentTime + START_DELAY_S;
    this.source.start(this.startContextS);
  }

  poll() {
    this.offsetMs = Math.min(this.offsetMs, performance.now() - this.context.currentTime * 1000);
  }

  // performance.now() milliseconds at which each onset of the speech played so far entered the track.
  onsetTimesMs() {
    if (this.startContextS === null || !Number.isFinite(this.offsetMs)) return [];
    const playedS = this.context.currentTime - this.startContextS;
    const times = [];
    for (let cycle = 0; cycle * this.buffer.duration <= playedS; cycle += 1) {
      for (const onsetS of this.bufferOnsets) {
        const atS = cycle * this.buffer.duration + onsetS;
        if (atS <= playedS) times.push((this.startContextS + atS) * 1000 + this.offsetMs);
      }
      if (!this.loop) break;
    }
    return times;
  }

  close() {
    clearInterval(this.poller);
    this.track.stop();
    this.context.close().catch(() => {});
  }
}

// Onset times (s) in a mono signal: the first sample reaching ONSET_LEVEL after ONSET_QUIET_S below it.
function onsets(samples, rateHz) {
  const minQuiet = Math.round(ONSET_QUIET_S * rateHz);
  const found = [];
  let quiet = minQuiet;
  for (let i = 0; i < samples.length; i += 1) {
    if (Math.abs(samples[i]) >= ONSET_LEVEL) {
      if (quiet >= minQuiet) found.push(Math.floor((i * CLOCK_RATE_HZ) / rateHz) / CLOCK_RATE_HZ);
      quiet = 0;
    } else {
      quiet += 1;
    }
  }
  return found;
}
