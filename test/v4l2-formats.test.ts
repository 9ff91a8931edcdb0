// Format names and what "auto" picks among what a camera offers: pure
// functions, tested without a camera.
import assert from "assert";
import { checkCaptureOptions, defaultExtraPaths, fpsFraction, parseControls } from "../lib/capture/v4l2";
import { CameraFormat, CameraSize, chooseFormat, FormatError, formatOfCode, fourccOf, fpsOf, nameOfFourcc, rawFrameBytes } from "../lib/capture/v4l2-formats";

const iv = (...fps: number[]): Array<[number, number]> => fps.map((f) => [1, f] as [number, number]);
const size = (width: number, height: number, ...fps: number[]): CameraSize => ({ width, height, intervals: iv(...fps) });
const format = (fourcc: string, sizes: CameraSize[], extra: Partial<CameraFormat> = {}): CameraFormat => ({
  fourcc,
  name: nameOfFourcc(fourcc),
  description: fourcc,
  compressed: fourcc === "MJPG" || fourcc === "H264",
  emulated: false,
  sizes,
  ...extra,
});

// A typical UVC webcam: raw YUYV is slow at large sizes, MJPEG is not.
const WEBCAM: CameraFormat[] = [
  format("YUYV", [size(640, 480, 30, 15), size(1280, 720, 10, 5), size(1920, 1080, 5)]),
  format("MJPG", [size(640, 480, 30, 15), size(1280, 720, 30, 15), size(1920, 1080, 30, 15)]),
  format("H264", [size(1920, 1080, 30)]),
];

describe("v4l2 formats", () => {
  it("maps names and fourccs both ways", () => {
    assert.deepStrictEqual(["MJPEG", "mjpeg", "YUYV", "RGB24", "GREY", "H264", "NV12", "auto", ""].map(fourccOf), ["MJPG", "MJPG", "YUYV", "RGB3", "GREY", "H264", "NV12", "", ""]);
    assert.deepStrictEqual(["MJPG", "RGB3", "YUYV", "UYVY"].map(nameOfFourcc), ["MJPEG", "RGB24", "YUYV", "UYVY"]);
    assert.throws(() => fourccOf("MOTION-JPEG"), /format must be auto, MJPEG, YUYV/);
    assert.strictEqual(fpsOf([1001, 30000]).toFixed(2), "29.97");
    assert.deepStrictEqual([rawFrameBytes("YUYV", 1920, 1080), rawFrameBytes("NV12", 640, 480), rawFrameBytes("MJPG", 640, 480)], [4147200, 460800, 0]);
  });

  it("auto picks the format that reaches the rate at the size asked for", () => {
    const hd = chooseFormat(WEBCAM, { format: "auto", width: 1920, height: 1080, fps: 30, purpose: "raw" });
    assert.deepStrictEqual([hd.format, hd.width, hd.height, hd.fps], ["MJPEG", 1920, 1080, 30], "raw YUYV only does 5 fps there");
    const small = chooseFormat(WEBCAM, { format: "auto", width: 640, height: 480, fps: 30, purpose: "raw" });
    assert.deepStrictEqual([small.format, small.fps], ["YUYV", 30], "both do: a program gets raw pixels");
    const preview = chooseFormat(WEBCAM, { format: "auto", width: 640, height: 480, fps: 30, purpose: "preview" });
    assert.deepStrictEqual([preview.format, preview.fps], ["MJPEG", 30], "a preview gets JPEG");
    assert.match(preview.why, /chosen by auto among MJPEG, YUYV/);
  });

  it("takes the nearest size and rate, and the highest rate when none is asked for", () => {
    const c = chooseFormat(WEBCAM, { format: "MJPEG", width: 1000, height: 700, fps: 24 });
    assert.deepStrictEqual([c.width, c.height, c.fps, c.fpsNumerator, c.fpsDenominator], [1280, 720, 30, 30, 1]);
    assert.match(c.why, /nearest to 1000x700.*nearest to 24 fps/);
    const d = chooseFormat(WEBCAM, { format: "YUYV" });
    assert.deepStrictEqual([d.width, d.height, d.fps], [640, 480, 30], "640x480 by default, at its best rate");
    const e = chooseFormat(WEBCAM, { format: "YUYV", width: 1280, height: 720, fps: 7 });
    assert.strictEqual(e.fps, 5, "7 fps: 5 is nearer than 10");
    const f = chooseFormat(WEBCAM, { format: "YUYV", width: 1280, height: 720, fps: 7.5 });
    assert.strictEqual(f.fps, 10, "as near as each other: the higher rate");
  });

  it("never picks H.264 or emulated formats by itself, but takes them by name", () => {
    const onlyH264 = [WEBCAM[2]];
    assert.throws(() => chooseFormat(onlyH264, { format: "auto" }), (e: Error) => e instanceof FormatError && /offers H264.*name one/.test(e.message));
    assert.strictEqual(chooseFormat(onlyH264, { format: "H264" }).format, "H264");
    const emulated = [format("RGB3", [size(640, 480, 30)], { emulated: true }), format("YUYV", [size(640, 480, 15)])];
    assert.strictEqual(chooseFormat(emulated, { format: "auto", fps: 30, purpose: "raw" }).format, "YUYV");
  });

  it("refuses a format the camera lacks, saying what it offers", () => {
    assert.throws(() => chooseFormat(WEBCAM, { format: "NV12" }), /does not offer NV12 \(it offers YUYV, MJPEG, H264\)/);
    assert.throws(() => chooseFormat([], { format: "auto" }), /lists no video formats/);
  });

  it("handles stepwise sizes and interval ranges", () => {
    const stepwise: CameraFormat = format("YUYV", [
      {
        width: 1920,
        height: 1080,
        intervals: [],
        stepwise: { minWidth: 32, maxWidth: 1920, stepWidth: 16, minHeight: 32, maxHeight: 1080, stepHeight: 8 },
        intervalRange: { min: 1 / 60, max: 1 },
      },
    ]);
    const c = chooseFormat([stepwise], { format: "auto", width: 1000, height: 500, fps: 25 });
    assert.deepStrictEqual([c.width, c.height, c.fps], [1008, 504, 25]);
    const top = chooseFormat([stepwise], { format: "YUYV", width: 4000, height: 3000 });
    assert.deepStrictEqual([top.width, top.height, Math.round(top.fps)], [1920, 1080, 60]);
  });

  it("checks node settings with sentences", () => {
    const s = checkCaptureOptions({ device: "/dev/video0", format: "mjpeg", width: "1280", height: "720", fps: "29.97", delivery: "throttle", rate: "2", extraPaths: [] });
    assert.deepStrictEqual([s.fourcc, s.format, s.width, s.height, s.fps, s.rate, s.queue, s.buffers], ["MJPG", "MJPEG", 1280, 720, 29.97, 2, 2, 4]);
    assert.deepStrictEqual(fpsFraction(29.97), [30000, 1001]);
    assert.deepStrictEqual(fpsFraction(30), [30, 1]);
    assert.deepStrictEqual(fpsFraction(12.5), [12500, 1000]);
    const id = checkCaptureOptions({ device: "usb-046d:0825-ABC123", extraPaths: [] });
    assert.deepStrictEqual([id.device, id.format, id.delivery], ["usb-046d:0825-ABC123", "auto", "every"]);
    const ring = checkCaptureOptions({ device: "/dev/video0", delivery: "ring", ring: "cam", ringMode: "640", extraPaths: [] });
    assert.deepStrictEqual(ring.ring, { name: "cam", slots: 8, mode: 0o640, keep: false, zeroCopy: true });
    assert.throws(() => checkCaptureOptions({ device: "" }), /device must be a camera path/);
    assert.throws(() => checkCaptureOptions({ device: "video0/x" }), /device must be a camera path/);
    assert.throws(() => checkCaptureOptions({ device: "/dev/video0", width: 640 }), /both width and height/);
    assert.throws(() => checkCaptureOptions({ device: "/dev/video0", delivery: "ring" }), /needs a ring name/);
    assert.throws(() => checkCaptureOptions({ device: "/dev/video0", delivery: "ring", ring: "a/b" }), /invalid ring name/);
    assert.throws(() => checkCaptureOptions({ device: "/dev/video0", delivery: "throttle", rate: 0 }), /rate must be above 0/);
    assert.throws(() => checkCaptureOptions({ device: "/dev/video0", delivery: "sometimes" }), /delivery must be every, throttle, snapshot or ring/);
    assert.throws(() => checkCaptureOptions({ device: "/dev/video0", buffers: 1 }), /buffers must be a whole number from 2 to 32/);
  });

  it("reads controls as an object or JSON, in order", () => {
    assert.deepStrictEqual(parseControls('{"exposure_auto": "Manual Mode", "exposure_absolute": 300, "focus_auto": false}'), [
      { name: "exposure_auto", value: "Manual Mode" },
      { name: "exposure_absolute", value: 300 },
      { name: "focus_auto", value: false },
    ]);
    assert.deepStrictEqual(parseControls(""), []);
    assert.throws(() => parseControls("{brightness: 1}"), /JSON object/);
    assert.throws(() => parseControls({ brightness: 1.5 }), /whole number/);
    assert.throws(() => parseControls([1]), /must be an object/);
  });

  it("takes extra device paths from DEVPLANE_V4L2_DEVICES", () => {
    assert.deepStrictEqual(defaultExtraPaths({ DEVPLANE_V4L2_DEVICES: "/dev/a, /dev/b,relative,," }), ["/dev/a", "/dev/b"]);
    assert.deepStrictEqual(defaultExtraPaths({}), []);
  });

  it("names a frame's pixel format from its V4L2 code as the addon's formatName does", () => {
    const code = (t: string) => [...t.padEnd(4, " ")].reduce((n, c, i) => n + c.charCodeAt(0) * 256 ** i, 0);
    assert.strictEqual(formatOfCode(code("MJPG")), "MJPEG");
    assert.strictEqual(formatOfCode(code("YUYV")), "YUYV");
    assert.strictEqual(formatOfCode(code("RGB3")), "RGB24");
    assert.strictEqual(formatOfCode(code("H264")), "H264");
    assert.strictEqual(formatOfCode(code("Y8")), "Y8");
    assert.strictEqual(formatOfCode(0x01020304), "????");
  });
});
