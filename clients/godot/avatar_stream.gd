# A client of the avatar engine's WebSocket API, version 2 (clients/PROTOCOL.md), for Godot 3.
#
# start(url, wav_path) connects, sends the hello, streams the WAV's PCM in 20 ms messages paced in
# real time (as a game streams a voice line it plays), and reads binary frame records. Each record
# carries the 52 ARKit blendshapes of one video frame and the instant of the speech it shows
# (audio_sample, 16 kHz samples from the first sample sent). Records are queued and handed out with
# the "frame" signal when the playback clock reaches that instant: the clock starts with the first
# audio message, delayed by the server's lookahead plus a margin, which is when a game would start
# playing the same audio locally (an AudioStreamPlayer) to keep lips and voice together.
extends Node

signal frame(time_s, shapes)  # shapes: {"jawOpen": 0.42, ...}, ARKit names, 0..1
signal finished(frames)
signal failed(message)

const CHUNK_S = 0.02
const SEND_AHEAD_S = 0.2  # audio sent ahead of the clock, as a TTS stream would be
const PLAYBACK_MARGIN_S = 0.1  # network and scheduling slack on top of the server's lookahead
const CLOCK_RATE_HZ = 16000.0
const RECORD_MAGIC = "AVTR"

var _client = WebSocketClient.new()
var _pcm = PoolByteArray()
var _sample_rate_hz = 16000
var _channels = 1
var _sent_bytes = 0
var _ended = false
var _ready_message = null  # the server's ready message (a Dictionary) once it came
var _blendshape_names = []
var _start_usec = 0
var _playback_delay_s = 0.0
var _queue = []  # [time_s, shapes] in arrival order, which is frame order
var _frames_received = 0
var _end_message = null


func start(url: String, wav_path: String) -> void:
	var error = _read_wav(wav_path)
	if error != "":
		emit_signal("failed", error)
		return
	_client.connect("connection_established", self, "_on_connected")
	_client.connect("connection_error", self, "_on_connection_error")
	_client.connect("connection_closed", self, "_on_closed")
	_client.connect("data_received", self, "_on_data")
	if _client.connect_to_url(url) != OK:
		emit_signal("failed", "cannot connect to " + url)


func _on_connected(_protocol: String) -> void:
	var hello = {
		"type": "hello", "version": 2, "sample_rate_hz": _sample_rate_hz, "sample_format": "s16le",
		"channels": _channels, "outputs": ["blendshapes"], "blendshape_order": "unreal",
	}
	_send_text(JSON.print(hello))


func _on_connection_error() -> void:
	emit_signal("failed", "the WebSocket connection failed")


func _on_closed(_clean: bool) -> void:
	if _end_message == null:
		emit_signal("failed", "the server closed the connection before its end message")


func _on_data() -> void:
	var peer = _client.get_peer(1)
	var packet = peer.get_packet()
	if peer.was_string_packet():
		_on_text(JSON.parse(packet.get_string_from_utf8()).result)
	else:
		_on_record(packet)


func _on_text(message) -> void:
	if typeof(message) != TYPE_DICTIONARY:
		emit_signal("failed", "the server sent text that is not a JSON object")
	elif message["type"] == "ready":
		_ready_message = message
		_blendshape_names = message["blendshape_names"]
		_playback_delay_s = message["lookahead_samples"] / CLOCK_RATE_HZ + PLAYBACK_MARGIN_S
		_start_usec = OS.get_ticks_usec()
	elif message["type"] == "end":
		_end_message = message
	elif message["type"] == "error":
		emit_signal("failed", "%s: %s" % [message["code"], message["message"]])


func _on_record(packet: PoolByteArray) -> void:
	var buffer = StreamPeerBuffer.new()  # little-endian, as the protocol
	buffer.data_array = packet
	if packet.size() < 32 or packet.subarray(0, 3).get_string_from_ascii() != RECORD_MAGIC:
		emit_signal("failed", "not a frame record")
		return
	buffer.seek(4)
	var version = buffer.get_u8()
	var kind = buffer.get_u8()
	buffer.get_u16()  # flags
	buffer.get_u32()  # seq
	buffer.get_u32()  # frame index
	var audio_sample = buffer.get_u64()
	buffer.get_u32()  # server_latency_us: time inside the server only
	var n_aus = buffer.get_u16()
	var n_shapes = buffer.get_u16()
	if version != 2 or kind != 1 or n_shapes != _blendshape_names.size():
		emit_signal("failed", "unexpected record: version %d, type %d, %d blendshapes" % [version, kind, n_shapes])
		return
	buffer.seek(32 + 4 * n_aus)
	var shapes = {}
	for name in _blendshape_names:
		shapes[name] = buffer.get_float()
	_queue.append([audio_sample / CLOCK_RATE_HZ, shapes])
	_frames_received += 1


func _process(_delta: float) -> void:
	_client.poll()
	if _ready_message == null:
		return
	var clock_s = (OS.get_ticks_usec() - _start_usec) / 1e6
	_send_audio_until(clock_s + SEND_AHEAD_S)
	var playback_s = clock_s - _playback_delay_s
	while not _queue.empty() and _queue[0][0] <= playback_s:
		var item = _queue.pop_front()
		emit_signal("frame", item[0], item[1])
	if _end_message != null and _queue.empty():
		_client.disconnect_from_host()
		emit_signal("finished", _frames_received)
		set_process(false)


func _send_audio_until(time_s: float) -> void:
	var bytes_per_second = _sample_rate_hz * _channels * 2
	var chunk_bytes = int(_sample_rate_hz * CHUNK_S) * _channels * 2
	while not _ended and _sent_bytes < min(_pcm.size(), time_s * bytes_per_second):
		var end = min(_sent_bytes + chunk_bytes, _pcm.size())
		_client.get_peer(1).set_write_mode(WebSocketPeer.WRITE_MODE_BINARY)
		_client.get_peer(1).put_packet(_pcm.subarray(_sent_bytes, end - 1))  # subarray includes its end
		_sent_bytes = end
	if not _ended and _sent_bytes >= _pcm.size():
		_send_text(JSON.print({"type": "end"}))
		_ended = true


func _send_text(text: String) -> void:
	var peer = _client.get_peer(1)
	peer.set_write_mode(WebSocketPeer.WRITE_MODE_TEXT)  # the default is binary: JSON must go as text
	peer.put_packet(text.to_utf8())


func _read_wav(path: String) -> String:
	var file = File.new()
	if file.open(path, File.READ) != OK:
		return "cannot open " + path
	var bytes = file.get_buffer(file.get_len())
	file.close()
	var buffer = StreamPeerBuffer.new()
	buffer.data_array = bytes
	if bytes.size() < 12 or bytes.subarray(0, 3).get_string_from_ascii() != "RIFF" \
			or bytes.subarray(8, 11).get_string_from_ascii() != "WAVE":
		return path + " is not a WAV file"
	var offset = 12
	var bits = 0
	while offset + 8 <= bytes.size():
		var chunk_id = bytes.subarray(offset, offset + 3).get_string_from_ascii()
		buffer.seek(offset + 4)
		var size = buffer.get_u32()
		if chunk_id == "fmt ":
			var format = buffer.get_u16()
			_channels = buffer.get_u16()
			_sample_rate_hz = buffer.get_u32()
			buffer.get_u32()  # byte rate
			buffer.get_u16()  # block align
			bits = buffer.get_u16()
			if format != 1 or bits != 16:
				return path + ": only 16-bit PCM WAV files are streamed by this sample"
		elif chunk_id == "data":
			_pcm = bytes.subarray(offset + 8, min(offset + 8 + size, bytes.size()) - 1)
			return ""
		offset += 8 + size + size % 2
	return path + " has no data chunk"
