// Latency as the person in this browser sees it: from a speech sample entering the page's outgoing
// track to the video frame showing it being presented.
//
// Three clocks meet here. The server stamps each frame with the audio instant it shows
// (`shown_sample`, 16 kHz samples of the session's audio clock) and the RTP timestamp it was sent
// with (`pts`, in the ~1 s stats messages). The browser tells, per presented frame
// (requestVideoFrameCallback), its RTP timestamp and when it was received and presented
// (performance.now() milliseconds). The page knows when each sample of the speech it plays entered
// the track (speech.js: WebAudio context time mapped onto performance.now()).
//
// Pairing: RTP timestamps = server pts + one random offset, found as the most frequent difference;
// the session's audio clock is pinned to WebAudio's context clock by speech onsets heard on both
// sides (the server's `speech_onsets`, the page's own detector, the same rule:
// engine/live/onsets.py), taking the offset most onsets agree on. Both clocks count the same
// samples, so that offset holds for the whole session even when WebAudio runs slower than real
// time (speech.js); the instant a sample entered the track is then speech.js's to say.
"use strict";

export const CLOCK_RATE_HZ = 16000;
const RTP_MODULO = 2 ** 32;
const RTP_MATCHES_TO_LOCK = 8;
const ONSET_AGREEMENT_MS = 5;
const KEEP_MS = 120_000;
const MAX_ONSETS = 40;

export class LatencyMeter {
  constructor() {
    this.presented = []; // {rtp, presentedMs, expectedMs, receivedMs} not yet paired
    this.traces = new Map(); // server pts -> trace
    this.rtpOffset = null;
    this.offsetVotes = new Map();
    this.serverOnsets = []; // 16 kHz samples of the session's audio clock
    this.speech = null; // the page's speech source (speech.js), when it plays one
    this.pairs = []; // one per presented fresh frame: see pair()
    this.presentedCount = 0;
    this.presentedTimesMs = []; // every frame presented (repeats included), the last KEEP_MS
    this.onsetAgreement = null;
  }

  // requestVideoFrameCallback metadata of a frame the page presented.
  onPresented(metadata) {
    this.presentedCount += 1;
    this.presentedTimesMs.push(metadata.presentationTime);
    while (this.presentedTimesMs[0] < metadata.presentationTime - KEEP_MS) this.presentedTimesMs.shift();
    if (metadata.rtpTimestamp === undefined) return;
    this.presented.push({
      rtp: metadata.rtpTimestamp,
      presentedMs: metadata.presentationTime,
      expectedMs: metadata.expectedDisplayTime,
      receivedMs: metadata.receiveTime,
    });
    this.pairPending();
  }

  // A stats message of the server: frame traces and the onsets it heard.
  onStats(message) {
    for (const trace of message.frames || []) {
      if (trace.pts !== null && trace.pts !== undefined) this.traces.set(trace.pts, trace);
    }
    this.serverOnsets.push(...(message.speech_onsets || []));
    if (this.rtpOffset === null) this.voteRtpOffset();
    this.pairPending();
  }

  voteRtpOffset() {
    for (const frame of this.presented.slice(-100)) {
      for (const pts of this.traces.keys()) {
        const diff = (((frame.rtp - pts) % RTP_MODULO) + RTP_MODULO) % RTP_MODULO;
        const votes = (this.offsetVotes.get(diff) || 0) + 1;
        this.offsetVotes.set(diff, votes);
        if (votes >= RTP_MATCHES_TO_LOCK) {
          this.rtpOffset = diff;
          return;
        }
      }
    }
  }

  // WebAudio's context time (s) of the session's audio sample 0: sample n is the one the speech
  // source played at this + n / 16000 s. Null while no onset pins the two clocks together.
  audioClockOriginS() {
    if (!this.speech) return null;
    // The recent onsets are enough to pin the clocks, and keep this cheap in a long session.
    const recentS = this.speech.context.currentTime - KEEP_MS / 1000;
    const pageOnsets = this.speech.onsetContextTimesS().filter((t) => t >= recentS);
    const candidates = [];
    for (const s of this.serverOnsets.slice(-MAX_ONSETS)) {
      for (const p of pageOnsets) candidates.push(p - s / CLOCK_RATE_HZ);
    }
    let best = null;
    let bestSupport = 0;
    for (const candidate of candidates) {
      const agreeing = candidates.filter((c) => Math.abs(c - candidate) * 1000 <= ONSET_AGREEMENT_MS);
      if (agreeing.length > bestSupport) {
        bestSupport = agreeing.length;
        best = agreeing.reduce((a, b) => a + b, 0) / agreeing.length;
        // How well the onsets agree: a measure of this pairing's own uncertainty.
        this.onsetAgreement = {
          onsets: agreeing.length,
          spread_ms: (Math.max(...agreeing) - Math.min(...agreeing)) * 1000,
        };
      }
    }
    return best;
  }

  // When the session's audio sample `sample` entered the outgoing track (performance.now() ms), or null.
  enteredMs(originS, sample) {
    return originS === null ? null : this.speech.enteredMs(originS + sample / CLOCK_RATE_HZ);
  }

  pairPending() {
    if (this.rtpOffset === null) return;
    const waiting = [];
    for (const frame of this.presented) {
      const pts = (((frame.rtp - this.rtpOffset) % RTP_MODULO) + RTP_MODULO) % RTP_MODULO;
      const trace = this.traces.get(pts);
      if (trace) {
        this.pairs.push({ ...frame, trace });
        this.traces.delete(pts);
      } else if (performance.now() - frame.presentedMs < 3000) {
        waiting.push(frame); // its trace comes with the next stats message; a repeat never gets one
      }
    }
    this.presented = waiting;
    const oldest = performance.now() - KEEP_MS;
    while (this.pairs.length && this.pairs[0].presentedMs < oldest) this.pairs.shift();
  }

  // Per fresh presented frame: end-to-end latency (sample entered the track -> frame presented;
  // null without onsets), the browser's share (received -> presented) and the server's share. For a
  // benchmark that knows how the server's clock (seconds of CLOCK_MONOTONIC: audio_arrival_s, send_s)
  // relates to this page's, also the raw instants that split the rest into uplink and downlink:
  // when the last sample the frame needed entered the track (due_entered_ms) and when it was received.
  results(sinceMs = -Infinity) {
    const originS = this.audioClockOriginS();
    return this.pairs
      .filter((pair) => pair.presentedMs >= sinceMs)
      .map((pair) => {
        const sampleMs = this.enteredMs(originS, pair.trace.shown_sample);
        const dueEnteredMs = this.enteredMs(originS, pair.trace.due_sample - 1);
        return {
          shown_sample: pair.trace.shown_sample,
          pts: pair.trace.pts,
          presented_ms: pair.presentedMs,
          latency_ms: sampleMs === null ? null : pair.presentedMs - sampleMs,
          expected_display_latency_ms: sampleMs === null ? null : pair.expectedMs - sampleMs,
          receive_to_present_ms: pair.presentedMs - pair.receivedMs,
          server_ms: (pair.trace.send_s - pair.trace.audio_arrival_s) * 1000,
          due_sample: pair.trace.due_sample,
          due_entered_ms: dueEnteredMs,
          received_ms: pair.receivedMs,
          audio_arrival_s: pair.trace.audio_arrival_s,
          send_s: pair.trace.send_s,
        };
      });
  }
}

export function percentile(values, q) {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((q / 100) * sorted.length))];
}
