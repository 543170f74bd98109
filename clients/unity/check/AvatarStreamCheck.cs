// A console program over the Unity sample's protocol code (no UnityEngine): streams a 16-bit PCM WAV
// in real time, schedules records on the playback clock like AvatarFaceDriver, prints what a face
// would show. Build and run with Mono (Debian: apt-get install mono-mcs):
//   mcs -langversion:7.2 -out:check.exe ../AvatarEngine/AvatarProtocol.cs ../AvatarEngine/AvatarStreamClient.cs AvatarStreamCheck.cs
//   mono check.exe ws://127.0.0.1:8080/ws speech.wav
using System;
using System.Diagnostics;
using System.IO;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using AvatarEngine;

static class AvatarStreamCheck
{
    const double ChunkS = 0.02, SendAheadS = 0.2;

    static int Main(string[] args)
    {
        if (args.Length != 2) { Console.Error.WriteLine("usage: mono check.exe WS_URL SPEECH.wav"); return 2; }
        try { return Run(new Uri(args[0]), args[1]).GetAwaiter().GetResult(); }
        catch (Exception error) { Console.Error.WriteLine("ERROR " + error.Message); return 1; }
    }

    static async Task<int> Run(Uri url, string wavPath)
    {
        int sampleRate, channels;
        byte[] pcm = ReadWav(wavPath, out sampleRate, out channels);
        using (var client = new AvatarStreamClient())
        {
            var ready = await client.ConnectAsync(url, sampleRate, channels);
            int jaw = Array.IndexOf(ready.BlendshapeNames, "jawOpen");
            var clock = Stopwatch.StartNew();
            double delayS = PlaybackQueue.PlaybackDelayS(ready);
            var playback = new PlaybackQueue();
            int frameBytes = 2 * channels, chunk = (int)(sampleRate * ChunkS) * frameBytes, sent = 0, shown = 0;
            bool ended = false;
            while (true)
            {
                if (client.Error != null) throw new Exception(client.Error);
                double elapsedS = clock.Elapsed.TotalSeconds;
                long until = Math.Min(pcm.Length, (long)((elapsedS + SendAheadS) * sampleRate) * frameBytes);
                while (sent < until)
                {
                    int count = Math.Min(chunk, pcm.Length - sent);
                    await client.SendAudioAsync(pcm, sent, count);
                    sent += count;
                }
                if (!ended && sent >= pcm.Length) { await client.EndAsync(); ended = true; }
                foreach (var record in playback.TakeDue(client.Records, elapsedS - delayS))
                {
                    Console.WriteLine(string.Format(System.Globalization.CultureInfo.InvariantCulture,
                        "FACE t={0:F3} jaw={1:F4}", record.TimeS, record.Blendshapes[jaw]));
                    shown++;
                }
                if (client.Ended && client.Records.IsEmpty && playback.Waiting == 0) break;
                Thread.Sleep(5);
            }
            Console.WriteLine("DONE frames=" + shown);
            return 0;
        }
    }

    static byte[] ReadWav(string path, out int sampleRate, out int channels)
    {
        var bytes = File.ReadAllBytes(path);
        if (Encoding.ASCII.GetString(bytes, 0, 4) != "RIFF" || Encoding.ASCII.GetString(bytes, 8, 4) != "WAVE")
            throw new Exception(path + " is not a WAV file");
        sampleRate = 0;
        channels = 0;
        for (int offset = 12; offset + 8 <= bytes.Length;)
        {
            string id = Encoding.ASCII.GetString(bytes, offset, 4);
            int size = BitConverter.ToInt32(bytes, offset + 4);
            if (id == "fmt ")
            {
                channels = BitConverter.ToInt16(bytes, offset + 10);
                sampleRate = BitConverter.ToInt32(bytes, offset + 12);
                if (BitConverter.ToInt16(bytes, offset + 8) != 1 || BitConverter.ToInt16(bytes, offset + 22) != 16)
                    throw new Exception(path + ": only 16-bit PCM WAV files");
            }
            else if (id == "data")
            {
                var pcm = new byte[Math.Min(size, bytes.Length - offset - 8)];
                Array.Copy(bytes, offset + 8, pcm, 0, pcm.Length);
                return pcm;
            }
            offset += 8 + size + size % 2;
        }
        throw new Exception(path + " has no data chunk");
    }
}
