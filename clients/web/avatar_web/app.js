// Browser client of the avatar server: microphone (or a sample recording) out over WebRTC, the
// avatar's video in, expression sliders over the "control" data channel, and the latency as seen
// here. Plain JavaScript modules, no build step.
//
// Signalling: POST /offer {"sdp", "type": "offer", "voice"} -> {"sdp", "type": "answer", "location"};
// DELETE <location> hangs up; both with the page's token (access.js). Control messages: see
// engine/server/control.py.
"use strict";

import { peerConfiguration, withToken } from "./access.js";
import { LatencyMeter, percentile } from "./measure.js";
import { SpeechSource } from "./speech.js";

const CONTROL_LABEL = "control";
const ICE_GATHERING_TIMEOUT_MS = 3000;
const STATS_PERIOD_MS = 1000;
const LATENCY_WINDOW_MS = 5000;
const SAMPLE_SPEECH_URL = "sample-speech.wav";

// AUs with a slider: [name, label]. Bias range -5..5 (the server refuses anything else).
const SLIDERS = [
  ["AU01", "inner brow raise"],
  ["AU02", "outer brow raise"],
  ["AU04", "brow lower"],
  ["AU05", "upper lid raise"],
  ["AU06", "cheek raise"],
  ["AU07", "lid tighten"],
  ["AU12", "lip corner pull"],
  ["AU15", "lip corner depress"],
  ["AU23", "lip tighten"],
  ["AU26", "jaw drop"],
];

// Presets set the sliders (bias); AUs not named go back to 0.
const PRESETS = {
  neutral: {},
  smile: { AU06: 2.0, AU12: 3.0 },
  "brows up": { AU01: 3.0, AU02: 3.0 },
  surprise: { AU01: 3.0, AU02: 3.0, AU05: 2.5, AU26: 2.5 },
  sad: { AU01: 2.5, AU04: 2.0, AU15: 3.0 },
  angry: { AU04: 3.0, AU07: 2.5, AU23: 2.5 },
};

const ALL_AUS = ["AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09", "AU10", "AU12",
  "AU14", "AU15", "AU17", "AU20", "AU23", "AU25", "AU26", "AU45"];

const $ = (id) => document.getElementById(id);

// One connection at a time; everything it holds is in `session`, so Stop releases all of it.
let session = null;

function setStatus(text, isError = false) {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("error", isError);
}

function buildExpressionControls() {
  const sliders = $("sliders");
  for (const [name, label] of SLIDERS) {
    const row = document.createElement("label");
    row.className = "slider";
    row.innerHTML = `<span class="au">${name}</span><span class="what">${label}</span>` +
      `<input type="range" min="-5" max="5" step="0.1" value="0" data-au="${name}">` +
      `<output>0.0</output>`;
    const input = row.querySelector("input");
    input.addEventListener("input", () => {
      row.querySelector("output").textContent = Number(input.value).toFixed(1);
      sendExpressionSoon();
    });
    sliders.appendChild(row);
  }
  const presets = $("presets");
  for (const name of Object.keys(PRESETS)) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = name;
    button.dataset.preset = name;
    button.addEventListener("click", () => applyPreset(name));
    presets.appendChild(button);
  }
  $("gain").addEventListener("input", () => {
    $("gain-value").textContent = Number($("gain").value).toFixed(1);
    sendExpressionSoon();
  });
}

function applyPreset(name) {
  const values = PRESETS[name];
  for (const input of document.querySelectorAll("#sliders input")) {
    const value = values[input.dataset.au] ?? 0;
    input.value = value;
    input.parentElement.querySelector("output").textContent = value.toFixed(1);
  }
  sendExpressionSoon();
}

// The whole slider state goes in every message ("reset": the server starts from neutral),
// so a lost or reordered message never leaves the face half-updated. At most one per frame.
let expressionPending = false;
function sendExpressionSoon() {
  if (expressionPending) return;
  expressionPending = true;
  requestAnimationFrame(() => {
    expressionPending = false;
    sendExpression();
  });
}

function sendExpression() {
  const control = session && session.control;
  if (!control || control.readyState !== "open") return;
  const bias = {};
  for (const input of document.querySelectorAll("#sliders input")) {
    bias[input.dataset.au] = Number(input.value);
  }
  const gainValue = Number($("gain").value);
  const gain = {};
  for (const name of ALL_AUS) gain[name] = gainValue;
  control.send(JSON.stringify({ type: "expression", reset: true, bias, gain }));
}

function onControlMessage(event) {
  let message;
  try {
    message = JSON.parse(event.data);
  } catch {
    return;
  }
  if (message.type === "stats") {
    if (session) session.meter.onStats(message);
    const latency = message.latency_ms || {};
    $("latency").textContent = latency.p50 == null ? "–" : `${latency.p50.toFixed(0)} / ${latency.p95.toFixed(0)} ms`;
    $("server-fps").textContent = `${message.fresh_fps.toFixed(1)} / ${message.fps.toFixed(1)}`;
  } else if (message.type === "error") {
    setStatus(`Server refused a control message: ${message.error}`, true);
  }
}

function waitForIceGathering(peer) {
  if (peer.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ICE_GATHERING_TIMEOUT_MS); // send what we have
    peer.addEventListener("icegatheringstatechange", () => {
      if (peer.iceGatheringState === "complete") {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

// The audio to send: the microphone, or a recording whose timing the page knows (speech.js).
async function openAudio(sampleSpeech) {
  if (sampleSpeech) {
    const given = sampleSpeech instanceof ArrayBuffer;
    let data = sampleSpeech;
    if (!given) {
      const response = await fetch(SAMPLE_SPEECH_URL);
      if (!response.ok) throw new Error(`the sample speech could not be loaded (HTTP ${response.status})`);
      data = await response.arrayBuffer();
    }
    const speech = await SpeechSource.open(data, { loop: !given, audible: !given });
    return { track: speech.track, speech, stop: () => speech.close() };
  }
  if (!navigator.mediaDevices) {
    throw new Error(
      "this page is not a secure context: browsers give the microphone only to https:// pages or " +
        "http://localhost (start the server with TLS, or open it on this machine), or use the sample speech"
    );
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      video: false,
    });
  } catch (error) {
    if (error.name === "NotAllowedError") {
      throw new Error("the microphone was refused: allow it in the site settings, or use the sample speech");
    }
    if (error.name === "NotFoundError") throw new Error("no microphone found: plug one in, or use the sample speech");
    throw new Error(`the microphone cannot be opened (${error.name}: ${error.message})`);
  }
  return { track: stream.getAudioTracks()[0], speech: null, stop: () => stream.getTracks().forEach((t) => t.stop()) };
}

// sampleSpeech: false for the microphone, true for the server's sample recording, or an ArrayBuffer
// holding a recording to play once (the benchmark's).
async function start(sampleSpeech = $("sample-speech").checked) {
  if (session) return;
  $("start").disabled = true;
  const current = { meter: new LatencyMeter(), pc: null, control: null, audio: null, location: null, timers: [] };
  session = current;
  try {
    setStatus(sampleSpeech ? "Loading the sample speech…" : "Asking for the microphone…");
    current.audio = await openAudio(sampleSpeech);
    current.meter.speech = current.audio.speech;
    const pc = new RTCPeerConnection(await peerConfiguration()); // ICE servers as the server says (none by default)
    current.pc = pc;
    pc.addTrack(current.audio.track);
    pc.addTransceiver("video", { direction: "recvonly" });
    current.control = pc.createDataChannel(CONTROL_LABEL);
    current.control.addEventListener("message", onControlMessage);
    current.control.addEventListener("open", sendExpression);
    current.control.addEventListener("open", sendLiveness);
    pc.addEventListener("track", (event) => onTrack(current, event));
    pc.addEventListener("connectionstatechange", () => onConnectionState(current));

    setStatus("Connecting…");
    await pc.setLocalDescription(await pc.createOffer());
    await waitForIceGathering(pc);
    const response = await fetch("/offer", {
      method: "POST",
      headers: withToken({ "Content-Type": "application/json" }),
      body: JSON.stringify({ sdp: pc.localDescription.sdp, type: "offer", voice: $("voice-back").checked }),
    });
    const body = await response.json().catch(() => ({ error: response.statusText }));
    if (response.status === 503) {
      const retry = response.headers.get("Retry-After");
      throw new Error(`${body.error || "the server is full"}${retry ? ` (retry in ${retry} s)` : ""}`);
    }
    if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
    if (session !== current) return; // stopped meanwhile
    current.location = body.location;
    await pc.setRemoteDescription({ type: body.type, sdp: body.sdp });
    if (current.audio.speech) current.audio.speech.start();
    $("stop").disabled = false;
    current.timers.push(setInterval(() => readBrowserStats(current), STATS_PERIOD_MS));
  } catch (error) {
    setStatus(`Could not start: ${error.message}`, true);
    await stop(false);
  }
}

function onTrack(current, event) {
  // Ask the browser to buffer as little as it can: this is a live conversation, not a broadcast.
  if ("jitterBufferTarget" in event.receiver) event.receiver.jitterBufferTarget = 0;
  const stream = new MediaStream([event.track]);
  if (event.track.kind === "video") {
    const video = $("video");
    video.srcObject = stream;
    video.play().catch(() => {});
    watchPresentedFrames(current, video);
  } else {
    $("voice").srcObject = stream;
  }
}

// Every frame the page presents, until this session stops (then the callback is cancelled, so a
// new session never counts frames twice).
function watchPresentedFrames(current, video) {
  if (!("requestVideoFrameCallback" in HTMLVideoElement.prototype)) return;
  const onFrame = (_now, metadata) => {
    if (session !== current) return;
    current.meter.onPresented(metadata);
    current.frameCallback = video.requestVideoFrameCallback(onFrame);
  };
  current.frameCallback = video.requestVideoFrameCallback(onFrame);
  current.video = video;
}

function onConnectionState(current) {
  if (session !== current || !current.pc) return;
  const state = current.pc.connectionState;
  if (state === "connected") setStatus(current.audio.speech ? "Connected: playing the sample speech." : "Connected: speak!");
  else if (state === "failed") setStatus("Connection failed.", true);
  else if (state === "disconnected") setStatus("Connection interrupted…", true);
  else if (state === "closed") setStatus("Disconnected.");
}

function formatPair(values) {
  const p50 = percentile(values, 50);
  return p50 === null ? "–" : `${p50.toFixed(0)} / ${percentile(values, 95).toFixed(0)} ms`;
}

async function readBrowserStats(current) {
  if (session !== current || !current.pc) return;
  const meter = current.meter;
  $("received-fps").textContent = (meter.presentedCount - (current.lastPresentedCount || 0)).toFixed(0);
  current.lastPresentedCount = meter.presentedCount;
  const recent = meter.results(performance.now() - LATENCY_WINDOW_MS);
  const endToEnd = recent.map((r) => r.latency_ms).filter((v) => v !== null);
  $("e2e-latency").textContent = current.audio.speech ? formatPair(endToEnd) : "with sample speech only";
  const report = await current.pc.getStats();
  report.forEach((stat) => {
    if (stat.type !== "inbound-rtp" || stat.kind !== "video") return;
    const last = current.lastInbound;
    if (last && stat.jitterBufferEmittedCount > last.jitterBufferEmittedCount) {
      const delay =
        (stat.jitterBufferDelay - last.jitterBufferDelay) / (stat.jitterBufferEmittedCount - last.jitterBufferEmittedCount);
      $("browser-buffer").textContent = `${(delay * 1000).toFixed(0)} ms`;
      meter.bufferSamples = meter.bufferSamples || [];
      meter.bufferSamples.push({ at_ms: performance.now(), jitter_buffer_ms: delay * 1000 });
    }
    current.lastInbound = stat;
  });
}

async function stop(hangUp = true) {
  const current = session;
  session = null;
  if (current) {
    current.timers.forEach(clearInterval);
    if (current.video && current.frameCallback !== undefined) current.video.cancelVideoFrameCallback(current.frameCallback);
    if (hangUp && current.location) fetch(current.location, { method: "DELETE", headers: withToken() }).catch(() => {});
    if (current.pc) current.pc.close();
    if (current.audio) current.audio.stop();
    lastSession = current;
  }
  $("start").disabled = false;
  $("stop").disabled = true;
  if (hangUp) setStatus("Not connected.");
}

// The measurements of the session running (or the last one), for a benchmark driving this page.
let lastSession = null;
window.avatarBench = {
  start: (audioBase64) => start(Uint8Array.from(atob(audioBase64), (c) => c.charCodeAt(0)).buffer),
  stop: () => stop(true),
  measurements: () => {
    const current = session || lastSession;
    if (!current) return null;
    return {
      frames: current.meter.results(),
      presented_frames: current.meter.presentedCount,
      presented_times_ms: current.meter.presentedTimesMs,
      jitter_buffer: current.meter.bufferSamples || [],
      server_onsets: current.meter.serverOnsets,
      page_onsets_s: current.audio && current.audio.speech ? current.audio.speech.onsetContextTimesS() : [],
      speech_clock_rate: current.audio && current.audio.speech ? current.audio.speech.clockRate() : null,
      rtp_offset: current.meter.rtpOffset,
      onset_agreement: current.meter.onsetAgreement,
    };
  },
};

// ---- Liveness: blinks, smoothing, head and idle motion ({"type": "liveness", ...}, engine/server/control.py).
// Every message carries the whole panel, so a lost one never leaves the server half-updated.
function buildLivenessControls() {
  for (const input of document.querySelectorAll("#liveness input")) {
    input.addEventListener("input", () => {
      const output = input.nextElementSibling;
      if (input.type === "range" && output && output.tagName === "OUTPUT") {
        output.textContent = input.step === "1" ? input.value : Number(input.value).toFixed(1);
      }
      sendLiveness();
    });
  }
}

function sendLiveness() {
  const control = session && session.control;
  if (!control || control.readyState !== "open") return;
  const message = { type: "liveness" };
  for (const input of document.querySelectorAll("#liveness input")) {
    message[input.dataset.liveness] = input.type === "checkbox" ? input.checked : Number(input.value);
  }
  control.send(JSON.stringify(message));
}

buildExpressionControls();
buildLivenessControls();
$("start").addEventListener("click", () => start());
$("stop").addEventListener("click", () => stop(true));
window.addEventListener("pagehide", () => stop(true));
