// A head built from primitives whose morph targets are named after ARKit's blendshapes, as the
// morph targets of a real ARKit-rigged model (a GLB from a face-capture pipeline) would be. Any mesh
// with a morphTargetDictionary works with applyShapes(): load your own model and pass its meshes.
import {
  BoxGeometry,
  Color,
  Float32BufferAttribute,
  Group,
  Mesh,
  MeshStandardMaterial,
  SphereGeometry,
} from "./vendor/three.min.js";

const SKIN = new Color(0xf1c6a8);

/** Adds a morph target `name` to `geometry`: move(x, y, z) returns each vertex's displacement. */
function morph(geometry, name, move) {
  const position = geometry.attributes.position;
  const delta = new Float32Array(position.count * 3);
  for (let i = 0; i < position.count; i++) {
    const [dx, dy, dz] = move(position.getX(i), position.getY(i), position.getZ(i));
    delta.set([dx, dy, dz], 3 * i);
  }
  const attribute = new Float32BufferAttribute(delta, 3);
  attribute.name = name;
  (geometry.morphAttributes.position ??= []).push(attribute);
  geometry.morphTargetsRelative = true;
}

function morphMesh(geometry, material, targets) {
  for (const [name, move] of Object.entries(targets)) morph(geometry, name, move);
  const mesh = new Mesh(geometry, material);
  mesh.updateMorphTargets();
  return mesh;
}

/** Side of a vertex: +1 on the character's left (+x, the viewer's right), -1 on its right. */
const left = (x) => Math.max(0, Math.sign(x));
const right = (x) => Math.max(0, -Math.sign(x));

export function buildHead() {
  const head = new Group();
  const skin = new MeshStandardMaterial({ color: SKIN, roughness: 0.8 });

  const skull = morphMesh(new SphereGeometry(1, 64, 48), skin, {
    // the chin drops with the jaw
    jawOpen: (x, y, z) => [0, y < -0.35 && z > 0 ? -0.25 * Math.min(1, (-0.35 - y) / 0.3) : 0, 0],
  });
  skull.scale.set(0.82, 1.05, 0.88);
  head.add(skull);

  // Lips part: a dark ellipsoid on the face. Its top half is the upper lip line, its bottom the lower.
  const mouth = morphMesh(new SphereGeometry(1, 48, 24), new MeshStandardMaterial({ color: 0x5a1018 }), {
    jawOpen: (x, y) => [0, y < 0 ? 11 * y - 2.5 * (1 - x * x) : 0.8 * y, 0],
    mouthClose: (x, y) => [0, -0.9 * y, 0],
    mouthFunnel: (x) => [-0.35 * x, 0, 0.3],
    mouthPucker: (x, y) => [-0.45 * x, -0.3 * y, 0.4],
    mouthSmileLeft: (x, y) => [0.25 * x * left(x), 1.8 * x * x * left(x), 0],
    mouthSmileRight: (x, y) => [0.25 * x * right(x), 1.8 * x * x * right(x), 0],
    mouthFrownLeft: (x) => [0, -1.5 * x * x * left(x), 0],
    mouthFrownRight: (x) => [0, -1.5 * x * x * right(x), 0],
    mouthStretchLeft: (x) => [0.3 * x * left(x), 0, 0],
    mouthStretchRight: (x) => [0.3 * x * right(x), 0, 0],
    mouthLowerDownLeft: (x, y) => [0, y < 0 ? 4 * y * left(x) : 0, 0],
    mouthLowerDownRight: (x, y) => [0, y < 0 ? 4 * y * right(x) : 0, 0],
    mouthUpperUpLeft: (x, y) => [0, y > 0 ? 2 * y * left(x) : 0, 0],
    mouthUpperUpRight: (x, y) => [0, y > 0 ? 2 * y * right(x) : 0, 0],
    mouthPressLeft: (x, y) => [0, -0.5 * y * left(x), 0],
    mouthPressRight: (x, y) => [0, -0.5 * y * right(x), 0],
  });
  mouth.scale.set(0.28, 0.02, 0.08);
  mouth.position.set(0, -0.48, 0.8);
  head.add(mouth);

  const eyeWhite = new MeshStandardMaterial({ color: 0xffffff, roughness: 0.3 });
  const iris = new MeshStandardMaterial({ color: 0x3b2a1a });
  const brow = new MeshStandardMaterial({ color: 0x4a3020 });
  for (const side of ["Left", "Right"]) {
    const x = side === "Left" ? 0.3 : -0.3; // the character's left is +x
    const eye = new Mesh(new SphereGeometry(0.12, 24, 16), eyeWhite);
    eye.position.set(x, 0.18, 0.74);
    const pupil = new Mesh(new SphereGeometry(0.05, 16, 12), iris);
    pupil.position.set(x, 0.18, 0.85);
    // The upper lid: a skin shell above the eye that slides down over it.
    const lid = morphMesh(new SphereGeometry(0.135, 24, 16, 0, Math.PI * 2, 0, Math.PI / 2.2), skin, {
      [`eyeBlink${side}`]: (px, py) => [0, -0.9 * Math.max(py, 0) - 0.02, 0.01],
      [`eyeWide${side}`]: (px, py) => [0, 0.05, 0],
    });
    lid.position.set(x, 0.23, 0.74);
    const inner = -Math.sign(x); // toward the nose
    const browBar = morphMesh(new BoxGeometry(0.3, 0.04, 0.05), brow, {
      browInnerUp: (bx) => [0, Math.max(0, bx * inner) * 0.35, 0],
      [`browDown${side}`]: () => [0, -0.07, 0],
      [`browOuterUp${side}`]: (bx) => [0, Math.max(0, -bx * inner) * 0.35, 0],
    });
    browBar.position.set(x, 0.42, 0.8);
    head.add(eye, pupil, lid, browBar);
  }
  return head;
}

/** Set every morph target whose name is in `names` to the matching value (unknown names are ignored). */
export function applyShapes(root, names, values) {
  root.traverse((mesh) => {
    const dictionary = mesh.morphTargetDictionary;
    if (!dictionary) return;
    names.forEach((name, i) => {
      const index = dictionary[name];
      if (index !== undefined) mesh.morphTargetInfluences[index] = values[i];
    });
  });
}
