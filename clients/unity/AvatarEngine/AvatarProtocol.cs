// The avatar engine's WebSocket API, version 2 (clients/PROTOCOL.md): messages and records, no I/O.
// Plain C# 7.2 on System only, so that it compiles in Unity and with Mono's mcs alike.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;

namespace AvatarEngine
{
    /// <summary>One video frame's record: the instant of the speech it shows and its values.</summary>
    public sealed class FrameRecord
    {
        public int Index;
        /// <summary>The instant the frame shows: 16 kHz samples from the first audio sample sent.</summary>
        public long AudioSample;
        /// <summary>Time inside the server only (not end-to-end latency), microseconds.</summary>
        public uint ServerLatencyUs;
        /// <summary>17 AU intensities (0..5) in ready.au_names order, or empty if not asked.</summary>
        public float[] Aus;
        /// <summary>52 ARKit blendshape weights (0..1) in ready.blendshape_names order, or empty.</summary>
        public float[] Blendshapes;

        public double TimeS { get { return AudioSample / (double)AvatarProtocol.ClockRateHz; } }
    }

    /// <summary>The server's ready message: what the session sends and how its records are laid out.</summary>
    public sealed class ReadyMessage
    {
        public string SessionId;
        public int Fps;
        public int LookaheadSamples;
        public double IdleTimeoutS;
        public string[] AuNames;
        public string[] BlendshapeNames;
    }

    public static class AvatarProtocol
    {
        public const int Version = 2;
        public const int ClockRateHz = 16000;
        public const int HeaderBytes = 32;

        /// <summary>The hello for s16le PCM at <paramref name="sampleRateHz"/> asking for ARKit blendshapes.</summary>
        public static string Hello(int sampleRateHz, int channels, bool aus, bool blendshapes)
        {
            var outputs = new List<string>();
            if (aus) outputs.Add("\"aus\"");
            if (blendshapes) outputs.Add("\"blendshapes\"");
            return string.Format(
                CultureInfo.InvariantCulture,
                "{{\"type\":\"hello\",\"version\":{0},\"sample_rate_hz\":{1},\"sample_format\":\"s16le\"," +
                "\"channels\":{2},\"outputs\":[{3}],\"blendshape_order\":\"unreal\"}}",
                Version, sampleRateHz, channels, string.Join(",", outputs));
        }

        public const string EndMessage = "{\"type\":\"end\"}";

        /// <summary>A binary frame record, or null for a JPEG record; throws FormatException for anything else.</summary>
        public static FrameRecord ParseRecord(byte[] data, int length)
        {
            if (length < HeaderBytes || data[0] != 'A' || data[1] != 'V' || data[2] != 'T' || data[3] != 'R')
                throw new FormatException("not an AVTR record");
            if (data[4] != Version)
                throw new FormatException("record version " + data[4] + "; this client reads " + Version);
            if (data[5] == 2) return null;  // a JPEG record
            int nAus = ReadU16(data, 28), nShapes = ReadU16(data, 30);
            if (data[5] != 1 || length != HeaderBytes + 4 * (nAus + nShapes))
                throw new FormatException("malformed frame record");
            var record = new FrameRecord
            {
                Index = (int)ReadU32(data, 12),
                AudioSample = (long)(ReadU32(data, 16) | ((ulong)ReadU32(data, 20) << 32)),
                ServerLatencyUs = ReadU32(data, 24),
                Aus = new float[nAus],
                Blendshapes = new float[nShapes],
            };
            for (int i = 0; i < nAus; i++) record.Aus[i] = ReadF32(data, HeaderBytes + 4 * i);
            for (int i = 0; i < nShapes; i++) record.Blendshapes[i] = ReadF32(data, HeaderBytes + 4 * (nAus + i));
            return record;
        }

        public static ReadyMessage ParseReady(Dictionary<string, object> body)
        {
            return new ReadyMessage
            {
                SessionId = (string)body["session_id"],
                Fps = Convert.ToInt32(body["fps"], CultureInfo.InvariantCulture),
                LookaheadSamples = Convert.ToInt32(body["lookahead_samples"], CultureInfo.InvariantCulture),
                IdleTimeoutS = Convert.ToDouble(body["idle_timeout_s"], CultureInfo.InvariantCulture),
                AuNames = Strings(body["au_names"]),
                BlendshapeNames = Strings(body["blendshape_names"]),
            };
        }

        static string[] Strings(object list)
        {
            var items = (List<object>)list;
            var names = new string[items.Count];
            for (int i = 0; i < names.Length; i++) names[i] = (string)items[i];
            return names;
        }

        static int ReadU16(byte[] d, int o) { return d[o] | (d[o + 1] << 8); }
        static uint ReadU32(byte[] d, int o) { return (uint)(d[o] | (d[o + 1] << 8) | (d[o + 2] << 16) | (d[o + 3] << 24)); }

        static float ReadF32(byte[] d, int o)
        {
            if (BitConverter.IsLittleEndian) return BitConverter.ToSingle(d, o);
            var b = new[] { d[o + 3], d[o + 2], d[o + 1], d[o] };
            return BitConverter.ToSingle(b, 0);
        }
    }

    /// <summary>The little JSON the server's text messages need: objects, arrays, strings, numbers, literals.</summary>
    public static class MiniJson
    {
        public static Dictionary<string, object> ParseObject(string text)
        {
            int i = 0;
            var value = Value(text, ref i) as Dictionary<string, object>;
            if (value == null) throw new FormatException("not a JSON object");
            return value;
        }

        static object Value(string s, ref int i)
        {
            Skip(s, ref i);
            if (i >= s.Length) throw new FormatException("unexpected end of JSON");
            char c = s[i];
            if (c == '{')
            {
                var obj = new Dictionary<string, object>();
                i++;
                Skip(s, ref i);
                if (s[i] == '}') { i++; return obj; }
                while (true)
                {
                    Skip(s, ref i);
                    string key = String(s, ref i);
                    Skip(s, ref i);
                    Expect(s, ref i, ':');
                    obj[key] = Value(s, ref i);
                    Skip(s, ref i);
                    if (s[i] == ',') { i++; continue; }
                    Expect(s, ref i, '}');
                    return obj;
                }
            }
            if (c == '[')
            {
                var list = new List<object>();
                i++;
                Skip(s, ref i);
                if (s[i] == ']') { i++; return list; }
                while (true)
                {
                    list.Add(Value(s, ref i));
                    Skip(s, ref i);
                    if (s[i] == ',') { i++; continue; }
                    Expect(s, ref i, ']');
                    return list;
                }
            }
            if (c == '"') return String(s, ref i);
            if (s.Substring(i).StartsWith("true")) { i += 4; return true; }
            if (s.Substring(i).StartsWith("false")) { i += 5; return false; }
            if (s.Substring(i).StartsWith("null")) { i += 4; return null; }
            int start = i;
            while (i < s.Length && "+-0123456789.eE".IndexOf(s[i]) >= 0) i++;
            return double.Parse(s.Substring(start, i - start), CultureInfo.InvariantCulture);
        }

        static string String(string s, ref int i)
        {
            Expect(s, ref i, '"');
            var sb = new StringBuilder();
            while (s[i] != '"')
            {
                char c = s[i++];
                if (c != '\\') { sb.Append(c); continue; }
                char e = s[i++];
                switch (e)
                {
                    case 'n': sb.Append('\n'); break;
                    case 't': sb.Append('\t'); break;
                    case 'r': sb.Append('\r'); break;
                    case 'b': sb.Append('\b'); break;
                    case 'f': sb.Append('\f'); break;
                    case 'u': sb.Append((char)Convert.ToInt32(s.Substring(i, 4), 16)); i += 4; break;
                    default: sb.Append(e); break;
                }
            }
            i++;
            return sb.ToString();
        }

        static void Skip(string s, ref int i) { while (i < s.Length && char.IsWhiteSpace(s[i])) i++; }

        static void Expect(string s, ref int i, char c)
        {
            if (i >= s.Length || s[i] != c) throw new FormatException("expected '" + c + "' at " + i + " in JSON");
            i++;
        }
    }
}
