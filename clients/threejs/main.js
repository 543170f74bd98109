// The sample page: a three.js head lip-synced by the avatar engine's WebSocket API.
//
// Pick a WAV (or give ?wav=URL): the page plays it through WebAudio and streams the same samples to
// the engine ahead of playback; each record is applied when the playback clock reaches the instant it
// shows (its audio_sample / 16000 s after the first sample): one clock for voice and face.
// ?ws=ws://HOST:PORT/ws names the engine (default: this page's host, port 8080).
import { AmbientLight, DirectionalLight, PerspectiveCamera, Scene, WebGLRenderer } from "./vendor/three.min.js";
import { AvatarStream } from "./avatar_stream.js";
import { applyShapes, buildHead } from "./head.js";

const CHUNK_S = 0.02;
const SEND_AHEAD_S = 0.5; // audio streamed ahead of playback, as a TTS stream would be
const START_MARGIN_S = 0.15; // playback starts after the server's lookahead plus this

const params = new URLSearchParams(location.search);
const wsUrl = params.get("ws") ?? `ws://${location.hostname || "127.0.0.1"}:8080/ws`;
const status = document.getElementById("status");

const renderer = new WebGLRenderer({ antialias: true, preserveDrawingBuffer: true });
renderer.setSize(480, 480);
document.getElementById("stage").append(renderer.domElement);
const scene = new Scene();
const camera = new PerspectiveCamera(30, 1, 0.1, 20);
camera.position.set(0, 0, 4.2);
scene.add(new AmbientLight(0xffffff, 1.2));
const light = new DirectionalLight(0xffffff, 2.0);
light.position.set(1, 2, 3);
scene.add(light);
const head = buildHead();
scene.add(head);

// What the page did, for people (the status line) and for tests (window.avatar: every frame shown).
window.avatar = { state: "idle", names: [], shown: [], error: null };
export { head }; // to try shapes from the console: (await import("./head.js")).applyShapes(head, names, values)

let playback = null; // {context, startS, names, queue: [{timeS, shapes}], done}

renderer.setAnimationLoop(() => {
  if (playback) {
    const now = playback.context.currentTime - playback.startS;
    while (playback.queue.length && playback.queue[0].timeS <= now) {
      const { timeS, shapes } = playback.queue.shift();
      applyShapes(head, playback.names, shapes);
      window.avatar.shown.push({ timeS, jawOpen: shapes[playback.names.indexOf("jawOpen")], shapes: [...shapes] });
    }
    if (playback.done && !playback.queue.length) {
      window.avatar.state = "done";
      status.textContent = `done: ${window.avatar.shown.length} frames`;
      playback = null;
    }
  }
  renderer.render(scene, camera);
});

async function speak(arrayBuffer) {
  const context = new AudioContext();
  await context.resume();
  const audio = await context.decodeAudioData(arrayBuffer);
  const samples = audio.getChannelData(0);
  const queue = [];
  const stream = new AvatarStream(wsUrl, {
    onRecord: (record) => queue.push(record),
    onEnd: () => {
      if (playback) playback.done = true;
    },
    onError: (message) => {
      window.avatar.state = "error";
      window.avatar.error = message;
      status.textContent = `error: ${message}`;
    },
  });
  window.avatar.state = "connecting";
  const ready = await stream.open(audio.sampleRate);
  const startS = context.currentTime + ready.lookahead_samples / 16000 + START_MARGIN_S;
  const source = context.createBufferSource();
  source.buffer = audio;
  source.connect(context.destination);
  source.start(startS);
  playback = { context, startS, names: ready.blendshape_names, queue, done: false };
  window.avatar.names = ready.blendshape_names;
  window.avatar.state = "speaking";
  status.textContent = `speaking (${ready.session_id}, ${ready.fps} fps)`;

  const chunk = Math.round(audio.sampleRate * CHUNK_S);
  let sent = 0;
  const timer = setInterval(() => {
    const until = Math.min(samples.length, (context.currentTime - startS + SEND_AHEAD_S) * audio.sampleRate);
    while (sent < until) {
      stream.sendAudio(samples.subarray(sent, Math.min(sent + chunk, samples.length)));
      sent += chunk;
    }
    if (sent >= samples.length) {
      clearInterval(timer);
      stream.end();
    }
  }, CHUNK_S * 1000);
}

document.getElementById("wav").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  if (file) speak(await file.arrayBuffer());
});
if (params.get("wav")) {
  fetch(params.get("wav"))
    .then((response) => response.arrayBuffer())
    .then(speak)
    .catch((error) => {
      window.avatar.state = "error";
      window.avatar.error = String(error);
    });
}
