// A browser client of the avatar engine's WebSocket API, version 2 (clients/PROTOCOL.md).
//
// Sends the hello, then float32 PCM (f32le) that the caller feeds with sendAudio(); parses the ready,
// end and error messages and the binary frame records, whose blendshape section it names with the
// ready message's blendshape_names.

const RECORD_HEADER_BYTES = 32;
export const CLOCK_RATE_HZ = 16000;

export class AvatarStream {
  /**
   * @param {string} url  the engine's WebSocket URL, e.g. ws://127.0.0.1:8080/ws
   * @param {{onReady?: Function, onRecord?: Function, onEnd?: Function, onError?: Function}} handlers
   *   onRecord({index, timeS, shapes: Float32Array}) for every frame record, in order.
   */
  constructor(url, handlers) {
    this.url = url;
    this.handlers = handlers;
    this.ready = null;
    this.ended = false;
  }

  /** Connect and send the hello for mono float32 audio at `sampleRateHz`; resolves with the ready message. */
  open(sampleRateHz) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url);
      ws.binaryType = "arraybuffer";
      this.ws = ws;
      ws.onopen = () =>
        ws.send(
          JSON.stringify({
            type: "hello",
            version: 2,
            sample_rate_hz: sampleRateHz,
            sample_format: "f32le",
            channels: 1,
            outputs: ["blendshapes"],
            blendshape_order: "unreal",
          }),
        );
      ws.onerror = () => reject(new Error(`cannot talk to ${this.url}`));
      ws.onclose = (event) => {
        if (!this.ended) this.fail(`the server closed the connection (${event.code} ${event.reason})`);
      };
      ws.onmessage = (event) => {
        if (typeof event.data !== "string") {
          this.record(event.data);
          return;
        }
        const message = JSON.parse(event.data);
        if (message.type === "ready") {
          this.ready = message;
          this.handlers.onReady?.(message);
          resolve(message);
        } else if (message.type === "end") {
          this.ended = true;
          this.handlers.onEnd?.(message);
        } else if (message.type === "error") {
          this.fail(`${message.code}: ${message.message}`);
          reject(new Error(message.message));
        }
      };
    });
  }

  /** One audio message: a Float32Array of mono samples at the hello's rate. */
  sendAudio(samples) {
    this.ws.send(samples.buffer.slice(samples.byteOffset, samples.byteOffset + samples.byteLength));
  }

  end() {
    this.ws.send(JSON.stringify({ type: "end" }));
  }

  record(buffer) {
    const view = new DataView(buffer);
    const magic = String.fromCharCode(...new Uint8Array(buffer, 0, 4));
    if (buffer.byteLength < RECORD_HEADER_BYTES || magic !== "AVTR" || view.getUint8(4) !== 2) {
      this.fail("not a version 2 record");
      return;
    }
    if (view.getUint8(5) !== 1) return; // a JPEG record: not asked for here
    const index = view.getUint32(12, true);
    const audioSample = Number(view.getBigUint64(16, true));
    const nAus = view.getUint16(28, true);
    const nShapes = view.getUint16(30, true);
    // Copy: the float section may not be 4-byte aligned in a view of its own.
    const shapes = new Float32Array(buffer.slice(RECORD_HEADER_BYTES + 4 * nAus, RECORD_HEADER_BYTES + 4 * (nAus + nShapes)));
    this.handlers.onRecord?.({ index, timeS: audioSample / CLOCK_RATE_HZ, shapes });
  }

  fail(message) {
    this.ended = true;
    this.handlers.onError?.(message);
  }
}
