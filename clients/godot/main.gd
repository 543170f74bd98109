# Wires the stream to the face. Command line (after "--"):
#   --url=ws://127.0.0.1:8080/ws   the engine's WebSocket API
#   --wav=res://speech.wav          16-bit PCM WAV to stream (any rate, any channels)
#   --log                           print each applied frame (what the headless test reads)
extends Node


func _ready() -> void:
	var options = {"url": "ws://127.0.0.1:8080/ws", "wav": "", "log": false}
	for arg in OS.get_cmdline_args():
		if arg.begins_with("--") and arg != "--":
			var pair = arg.substr(2).split("=", true, 1)
			options[pair[0]] = pair[1] if pair.size() > 1 else true
	if options["wav"] == "":
		printerr("give the speech to send: -- --wav=/path/to/speech.wav")
		get_tree().quit(2)
		return
	var stream = $AvatarStream
	stream.connect("frame", self, "_on_frame")
	stream.connect("finished", self, "_on_finished")
	stream.connect("failed", self, "_on_failed")
	set_meta("log", options["log"])
	stream.start(options["url"], options["wav"])


func _on_frame(time_s: float, shapes: Dictionary) -> void:
	$Face.set_shapes(shapes)
	if get_meta("log"):
		print("FACE t=%.3f jaw=%.4f mouth_px=%.1f" % [time_s, $Face.jaw_open, $Face.mouth_height_px()])


func _on_finished(frames: int) -> void:
	print("DONE frames=%d" % frames)
	get_tree().quit(0)


func _on_failed(message: String) -> void:
	printerr("ERROR " + message)
	get_tree().quit(1)
