// Speech whose timing the page knows: a recording played through WebAudio into the outgoing track
// (instead of the microphone), with the instant each of its samples entered the track.
//
// Mapping WebAudio's clock onto performance.now(): the render thread processes audio in blocks;
// `context.currentTime` is the end of the block processed last. Polled often, the smallest
// `performance.now() - currentTime` is the moment a block was rendered, that is when its samples
// reached the MediaStreamAudioDestinationNode and so the outgoing track (within a render burst,
// a few ms). That offset is not constant: without a sound card (headless Chromium's fake output
// device) the render clock can run slower than real time, up to 2.5 % in half the runs on a loaded
// 2-core machine, so each sample's instant is taken from the polls made just after it was rendered,
// never from one offset for the whole session (which would add up to a second a minute to the
// latency measured; FIELD_NOTES.md).
"use strict";

import { CLOCK_RATE_HZ } from "./measure.js";

const ONSET_LEVEL = 0.1; // engine/live/onsets.py: the server applies the same rule to what it hears
const ONSET_QUIET_S = 0.25;
const START_DELAY_S = 0.3;
const POLL_MS = 20;
const RENDER_WINDOW_S = 0.1; // the polls that place a block: made within this much context time after it
const KEEP_POLLS = 6000; // two minutes of them

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
    this.polls = []; // {contextS: currentTime, offsetMs: performance.now() - currentTime * 1000}, in order
    this.poller = setInterval(() => this.poll(), POLL_MS);
  }

  start() {
    this.poll();
    this.startContextS = this.context.currentTime + START_DELAY_S;
    this.source.start(this.startContextS);
  }

  poll() {
    const contextS = this.context.currentTime;
    this.polls.push({ contextS, offsetMs: performance.now() - contextS * 1000 });
    if (this.polls.length > KEEP_POLLS) this.polls.splice(0, this.polls.length - KEEP_POLLS);
  }

  // performance.now() milliseconds at which the sample at context time `contextS` entered the track:
  // the smallest offset among the polls made within RENDER_WINDOW_S of context time after it (the
  // ones that saw its block, or the next ones, rendered). Null until such a poll exists.
  enteredMs(contextS) {
    let low = 0;
    let high = this.polls.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (this.polls[middle].contextS < contextS) low = middle + 1;
      else high = middle;
    }
    let best = Infinity;
    for (let i = low; i < this.polls.length && this.polls[i].contextS <= contextS + RENDER_WINDOW_S; i += 1) {
      best = Math.min(best, this.polls[i].offsetMs);
    }
    return Number.isFinite(best) ? contextS * 1000 + best : null;
  }

  // Context times (s) of the onsets of the speech played so far.
  onsetContextTimesS() {
    if (this.startContextS === null) return [];
    const playedS = this.context.currentTime - this.startContextS;
    const times = [];
    for (let cycle = 0; cycle * this.buffer.duration <= playedS; cycle += 1) {
      for (const onsetS of this.bufferOnsets) {
        const atS = cycle * this.buffer.duration + onsetS;
        if (atS <= playedS) times.push(this.startContextS + atS);
      }
      if (!this.loop) break;
    }
    return times;
  }

  // Context seconds per performance.now() second over the polls kept: 1 when WebAudio keeps real time.
  clockRate() {
    if (this.polls.length < 2) return null;
    const first = this.polls[0];
    const last = this.polls[this.polls.length - 1];
    const pageS = (last.contextS - first.contextS) + (last.offsetMs - first.offsetMs) / 1000;
    return pageS > 0 ? (last.contextS - first.contextS) / pageS : null;
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
