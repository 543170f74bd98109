// A client of the avatar engine's WebSocket API, version 2, on System.Net.WebSockets.ClientWebSocket
// (in Unity's .NET profiles and in Mono). Send PCM with SendAudioAsync; records arrive on a background
// task into Records, a thread-safe queue the game's main thread drains (see PlaybackQueue).
using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.IO;
using System.Net.WebSockets;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace AvatarEngine
{
    /// <summary>The server refused the session or ended it with an error message.</summary>
    public sealed class AvatarServerException : Exception
    {
        public readonly string Code;
        public AvatarServerException(string code, string message) : base(code + ": " + message) { Code = code; }
    }

    public sealed class AvatarStreamClient : IDisposable
    {
        public readonly ConcurrentQueue<FrameRecord> Records = new ConcurrentQueue<FrameRecord>();
        public ReadyMessage Ready { get; private set; }
        /// <summary>The server's end message arrived: no more records will come.</summary>
        public volatile bool Ended;
        /// <summary>Why the session failed, or null.</summary>
        public volatile string Error;

        readonly ClientWebSocket ws = new ClientWebSocket();
        readonly SemaphoreSlim sendLock = new SemaphoreSlim(1, 1);
        readonly CancellationTokenSource stop = new CancellationTokenSource();

        /// <summary>Connect, send the hello for s16le PCM, wait for ready (throws AvatarServerException if refused).</summary>
        public async Task<ReadyMessage> ConnectAsync(Uri url, int sampleRateHz, int channels)
        {
            await ws.ConnectAsync(url, stop.Token);
            await SendTextAsync(AvatarProtocol.Hello(sampleRateHz, channels, aus: false, blendshapes: true));
            var first = await ReceiveMessageAsync();
            if (first == null || !first.IsText) throw new AvatarServerException("bad_reply", "expected the ready message");
            var body = MiniJson.ParseObject(first.Text);
            if ((string)body["type"] == "error") throw new AvatarServerException((string)body["code"], (string)body["message"]);
            Ready = AvatarProtocol.ParseReady(body);
            _ = Task.Run(ReceiveLoopAsync);
            return Ready;
        }

        /// <summary>One audio message: little-endian 16-bit PCM in the hello's format (20 ms is a good size).</summary>
        public async Task SendAudioAsync(byte[] pcm, int offset, int count)
        {
            await sendLock.WaitAsync();
            try { await ws.SendAsync(new ArraySegment<byte>(pcm, offset, count), WebSocketMessageType.Binary, true, stop.Token); }
            finally { sendLock.Release(); }
        }

        /// <summary>No more audio: the server sends the last records, its end message, and closes.</summary>
        public Task EndAsync() { return SendTextAsync(AvatarProtocol.EndMessage); }

        async Task SendTextAsync(string text)
        {
            var bytes = Encoding.UTF8.GetBytes(text);
            await sendLock.WaitAsync();
            try { await ws.SendAsync(new ArraySegment<byte>(bytes), WebSocketMessageType.Text, true, stop.Token); }
            finally { sendLock.Release(); }
        }

        async Task ReceiveLoopAsync()
        {
            try
            {
                while (!Ended)
                {
                    var message = await ReceiveMessageAsync();
                    if (message == null) { if (!Ended) Error = "the server closed the connection before its end message"; return; }
                    if (!message.IsText)
                    {
                        var record = AvatarProtocol.ParseRecord(message.Data, message.Length);
                        if (record != null) Records.Enqueue(record);
                        continue;
                    }
                    var body = MiniJson.ParseObject(message.Text);
                    var type = (string)body["type"];
                    if (type == "end") Ended = true;
                    else if (type == "error") { Error = body["code"] + ": " + body["message"]; return; }
                }
            }
            catch (Exception error) when (!(error is OperationCanceledException))
            {
                Error = error.Message;
            }
        }

        sealed class Message
        {
            public bool IsText;
            public byte[] Data;
            public int Length;
            public string Text { get { return Encoding.UTF8.GetString(Data, 0, Length); } }
        }

        async Task<Message> ReceiveMessageAsync()
        {
            var buffer = new byte[8192];
            using (var stream = new MemoryStream())
            {
                while (true)
                {
                    var result = await ws.ReceiveAsync(new ArraySegment<byte>(buffer), stop.Token);
                    if (result.MessageType == WebSocketMessageType.Close) return null;
                    stream.Write(buffer, 0, result.Count);
                    if (result.EndOfMessage)
                        return new Message { IsText = result.MessageType == WebSocketMessageType.Text, Data = stream.ToArray(), Length = (int)stream.Length };
                }
            }
        }

        public void Dispose()
        {
            stop.Cancel();
            ws.Dispose();
        }
    }

    /// <summary>
    /// Hands records out when the playback clock reaches the instant they show (PROTOCOL.md, "Clocks"):
    /// start playing the audio locally at the moment the first sample is sent plus PlaybackDelayS, and
    /// pass the seconds played so far to TakeDue every frame.
    /// </summary>
    public sealed class PlaybackQueue
    {
        /// <summary>Network and scheduling slack on top of the server's lookahead.</summary>
        public const double MarginS = 0.1;
        readonly List<FrameRecord> pending = new List<FrameRecord>();

        public static double PlaybackDelayS(ReadyMessage ready)
        {
            return ready.LookaheadSamples / (double)AvatarProtocol.ClockRateHz + MarginS;
        }

        /// <summary>Every record that arrived whose instant is at or before <paramref name="playedS"/>, in order.</summary>
        public List<FrameRecord> TakeDue(ConcurrentQueue<FrameRecord> arrived, double playedS)
        {
            FrameRecord record;
            while (arrived.TryDequeue(out record)) pending.Add(record);
            var due = new List<FrameRecord>();
            while (pending.Count > 0 && pending[0].TimeS <= playedS)
            {
                due.Add(pending[0]);
                pending.RemoveAt(0);
            }
            return due;
        }

        public int Waiting { get { return pending.Count; } }
    }
}
