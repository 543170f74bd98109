# A drawn face whose mouth, eyes and brows follow four ARKit blendshapes (0..1).
# Replace it with your own character: a MeshInstance's blend shapes, a Skeleton2D, sprites...
extends Node2D

const MOUTH_CLOSED_PX = 4.0
const MOUTH_OPEN_PX = 60.0

var jaw_open = 0.0
var smile = 0.0
var blink = 0.0
var brows_up = 0.0


func set_shapes(shapes: Dictionary) -> void:
	jaw_open = shapes.get("jawOpen", 0.0)
	smile = shapes.get("mouthSmileLeft", 0.0)
	blink = shapes.get("eyeBlinkLeft", 0.0)
	brows_up = shapes.get("browInnerUp", 0.0)
	update()


func mouth_height_px() -> float:
	return lerp(MOUTH_CLOSED_PX, MOUTH_OPEN_PX, jaw_open)


func _draw() -> void:
	draw_circle(Vector2.ZERO, 120.0, Color(0.96, 0.8, 0.69))
	var eye_height = lerp(14.0, 1.0, blink)
	for side in [-1, 1]:
		draw_rect(Rect2(Vector2(side * 45 - 12, -40 - eye_height / 2), Vector2(24, eye_height)), Color.black)
		draw_line(Vector2(side * 45 - 18, -62 - 14 * brows_up), Vector2(side * 45 + 18, -62 - 14 * brows_up), Color.black, 4.0)
	var mouth = Rect2(Vector2(-30 - 10 * smile, 45 - mouth_height_px() / 2), Vector2(60 + 20 * smile, mouth_height_px()))
	draw_rect(mouth, Color(0.45, 0.08, 0.1))
