// Browser client of the avatar server: microphone out over WebRTC, the avatar's video in,
// expression sliders over the "control" data channel. Plain JavaScript, no build step.
//
// Signalling: POST /offer {"sdp", "type": "offer", "voice"} -> {"sdp", "type": "answer", "location"};
// DELETE <location> hangs up. Control messages: see engine/server/control.py.
"use strict";

const CONTROL_LABEL = "control";
const ICE_GATHERING_TIMEOUT_MS = 3000;
const STATS_PERIOD_MS = 1000;

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

let pc = null;
let control = null;
let microphone = null;
let location_ = null;
let statsTimer = null;
let lastInbound = null;
let presentedFrames = 0;

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

async function start() {
  $("start").disabled = true;
  setStatus("Asking for the microphone…");
  try {
    microphone = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      video: false,
    });
    pc = new RTCPeerConnection(); // no STUN server: the server is on this machine or this network
    for (const track of microphone.getAudioTracks()) pc.addTrack(track, microphone);
    pc.addTransceiver("video", { direction: "recvonly" });
    control = pc.createDataChannel(CONTROL_LABEL);
    control.addEventListener("message", onControlMessage);
    control.addEventListener("open", sendExpression);
    control.addEventListener("open", sendLiveness);
    pc.addEventListener("track", onTrack);
    pc.addEventListener("connectionstatechange", onConnectionState);

    setStatus("Connecting…");
    await pc.setLocalDescription(await pc.createOffer());
    await waitForIceGathering(pc);
    const response = await fetch("/offer", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ sdp: pc.localDescription.sdp, type: "offer", voice: $("voice-back").checked }),
    });
    const body = await response.json().catch(() => ({ error: response.statusText }));
    if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
    location_ = body.location;
    await pc.setRemoteDescription({ type: body.type, sdp: body.sdp });
    $("stop").disabled = false;
    statsTimer = setInterval(readBrowserStats, STATS_PERIOD_MS);
  } catch (error) {
    setStatus(`Could not start: ${error.message}`, true);
    await stop(false);
  }
}

function onTrack(event) {
  // Ask the browser to buffer as little as it can: this is a live conversation, not a broadcast.
  if ("jitterBufferTarget" in event.receiver) event.receiver.jitterBufferTarget = 0;
  const stream = new MediaStream([event.track]);
  if (event.track.kind === "video") {
    const video = $("video");
    video.srcObject = stream;
    video.play().catch(() => {});
    countPresentedFrames(video);
  } else {
    $("voice").srcObject = stream;
  }
}

function countPresentedFrames(video) {
  if (!("requestVideoFrameCallback" in HTMLVideoElement.prototype)) return;
  const onFrame = () => {
    presentedFrames += 1;
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
}

function onConnectionState() {
  if (!pc) return;
  const state = pc.connectionState;
  if (state === "connected") setStatus("Connected: speak!");
  else if (state === "failed") setStatus("Connection failed.", true);
  else if (state === "disconnected") setStatus("Connection interrupted…", true);
  else if (state === "closed") setStatus("Disconnected.");
}

async function readBrowserStats() {
  if (!pc) return;
  $("received-fps").textContent = presentedFrames.toFixed(0);
  presentedFrames = 0;
  const report = await pc.getStats();
  report.forEach((stat) => {
    if (stat.type !== "inbound-rtp" || stat.kind !== "video") return;
    if (lastInbound && stat.jitterBufferEmittedCount > lastInbound.jitterBufferEmittedCount) {
      const delay = (stat.jitterBufferDelay - lastInbound.jitterBufferDelay) /
        (stat.jitterBufferEmittedCount - lastInbound.jitterBufferEmittedCount);
      $("browser-buffer").textContent = `${(delay * 1000).toFixed(0)} ms`;
    }
    lastInbound = { jitterBufferDelay: stat.jitterBufferDelay, jitterBufferEmittedCount: stat.jitterBufferEmittedCount };
  });
}

async function stop(hangUp = true) {
  clearInterval(statsTimer);
  statsTimer = null;
  lastInbound = null;
  if (hangUp && location_) {
    fetch(location_, { method: "DELETE" }).catch(() => {});
  }
  location_ = null;
  if (pc) pc.close();
  pc = null;
  control = null;
  if (microphone) microphone.getTracks().forEach((track) => track.stop());
  microphone = null;
  $("start").disabled = false;
  $("stop").disabled = true;
  if (hangUp) setStatus("Not connected.");
}

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
  if (!control || control.readyState !== "open") return;
  const message = { type: "liveness" };
  for (const input of document.querySelectorAll("#liveness input")) {
    message[input.dataset.liveness] = input.type === "checkbox" ? input.checked : Number(input.value);
  }
  control.send(JSON.stringify(message));
}

buildExpressionControls();
buildLivenessControls();
$("start").addEventListener("click", start);
$("stop").addEventListener("click", () => stop(true));
window.addEventListener("pagehide", () => stop(true));
