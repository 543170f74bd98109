// Unity: drive a SkinnedMeshRenderer's ARKit blend shapes from the avatar engine while an AudioSource
// plays the same speech. Needs UnityEngine, so it is not compiled outside Unity; the protocol code it
// uses (AvatarProtocol.cs, AvatarStreamClient.cs) is, and is tested against a real server.
//
// Setup: put the three .cs files of this folder in Assets/, add this component to a GameObject with an
// AudioSource, assign Face (a mesh whose blend shapes carry ARKit names, e.g. "jawOpen"; prefixes such
// as "blendShape1.jawOpen" are matched too) and Clip (any AudioClip; it is sent as 16-bit PCM).
using System;
using System.Collections.Generic;
using UnityEngine;

namespace AvatarEngine
{
    [RequireComponent(typeof(AudioSource))]
    public sealed class AvatarFaceDriver : MonoBehaviour
    {
        public string ServerUrl = "ws://127.0.0.1:8080/ws";
        public SkinnedMeshRenderer Face;
        public AudioClip Clip;
        [Tooltip("Audio sent ahead of playback, seconds (a TTS stream is usually ahead)")]
        public float SendAheadS = 0.5f;

        const float ChunkS = 0.02f;
        AvatarStreamClient client;
        readonly PlaybackQueue playback = new PlaybackQueue();
        int[] shapeIndex;  // per name in ready.blendshape_names: the mesh's blend shape index, or -1
        byte[] pcm;
        int channels, sampleRate, sentBytes;
        double startDsp;
        bool streaming;

        async void Start()
        {
            channels = Clip.channels;
            sampleRate = Clip.frequency;
            var samples = new float[Clip.samples * channels];
            Clip.GetData(samples, 0);
            pcm = new byte[samples.Length * 2];
            for (int i = 0; i < samples.Length; i++)
            {
                short s = (short)Mathf.Clamp(Mathf.RoundToInt(samples[i] * 32767f), -32768, 32767);
                pcm[2 * i] = (byte)s;
                pcm[2 * i + 1] = (byte)(s >> 8);
            }
            client = new AvatarStreamClient();
            var ready = await client.ConnectAsync(new Uri(ServerUrl), sampleRate, channels);
            shapeIndex = MapShapes(ready.BlendshapeNames);
            startDsp = AudioSettings.dspTime + PlaybackQueue.PlaybackDelayS(ready);
            var source = GetComponent<AudioSource>();
            source.clip = Clip;
            source.PlayScheduled(startDsp);  // the audio clock the records are scheduled on
            streaming = true;
        }

        int[] MapShapes(string[] names)
        {
            var mesh = Face.sharedMesh;
            var byName = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
            for (int i = 0; i < mesh.blendShapeCount; i++)
            {
                var name = mesh.GetBlendShapeName(i);
                byName[name.Substring(name.LastIndexOf('.') + 1)] = i;
            }
            var indices = new int[names.Length];
            for (int i = 0; i < names.Length; i++) indices[i] = byName.TryGetValue(names[i], out var index) ? index : -1;
            return indices;
        }

        async void Update()
        {
            if (!streaming) return;
            if (client.Error != null) { Debug.LogError("avatar engine: " + client.Error); streaming = false; return; }
            double playedS = AudioSettings.dspTime - startDsp;
            int bytesPerSecond = sampleRate * channels * 2, chunk = Mathf.RoundToInt(sampleRate * ChunkS) * channels * 2;
            int until = Math.Min(pcm.Length, (int)((playedS + SendAheadS) * bytesPerSecond) / (channels * 2) * (channels * 2));
            while (sentBytes < until)
            {
                int count = Math.Min(chunk, pcm.Length - sentBytes);
                var sending = sentBytes;
                sentBytes += count;
                await client.SendAudioAsync(pcm, sending, count);
                if (sentBytes >= pcm.Length) await client.EndAsync();
            }
            foreach (var record in playback.TakeDue(client.Records, playedS))
                for (int i = 0; i < shapeIndex.Length; i++)
                    if (shapeIndex[i] >= 0) Face.SetBlendShapeWeight(shapeIndex[i], 100f * record.Blendshapes[i]);
            if (client.Ended && playback.Waiting == 0 && client.Records.IsEmpty) streaming = false;
        }

        void OnDestroy() { if (client != null) client.Dispose(); }
    }
}
