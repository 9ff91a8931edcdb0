// lib/shm pieces that need no ring: caps, names, modes, options, rates.
import assert from "assert";
import {
  audioCaps,
  capsForMessage,
  checkDelivery,
  checkRate,
  isValidRingName,
  parseCaps,
  parseRingMode,
  RateMeter,
  videoCaps,
} from "../lib/shm";

describe("lib/shm", () => {
  describe("content types", () => {
    it("describes raw video with format, size and stride", () => {
      assert.strictEqual(
        videoCaps({ format: "YUYV", width: 1920, height: 1080, stride: 3840 }),
        "video/x-raw,format=YUY2,width=1920,height=1080,stride=3840",
      );
      assert.strictEqual(videoCaps({ format: "GREY", width: 640, height: 480 }), "video/x-raw,format=GRAY8,width=640,height=480");
      assert.strictEqual(videoCaps({ format: "NV12" }), "video/x-raw,format=NV12");
      assert.strictEqual(videoCaps({ format: "RGB24", width: 2, height: 2, stride: 6 }), "video/x-raw,format=RGB,width=2,height=2,stride=6");
    });

    it("describes compressed video", () => {
      assert.strictEqual(videoCaps({ format: "MJPEG", width: 1280, height: 720 }), "image/jpeg");
      assert.strictEqual(videoCaps({ format: "H264" }), "video/x-h264,stream-format=byte-stream");
    });

    it("describes audio in GStreamer's names", () => {
      assert.strictEqual(audioCaps({ format: "S16_LE", rate: 48000, channels: 2 }), "audio/x-raw,format=S16LE,rate=48000,channels=2,layout=interleaved");
      assert.strictEqual(audioCaps({ format: "FLOAT_LE", rate: 16000, channels: 1 }), "audio/x-raw,format=F32LE,rate=16000,channels=1,layout=interleaved");
    });

    it("ignores what it cannot describe rather than guessing", () => {
      assert.strictEqual(videoCaps({ format: "WEIRD" }), undefined);
      assert.strictEqual(videoCaps({}), undefined);
      assert.strictEqual(audioCaps({ format: "U8" }), undefined);
      assert.strictEqual(videoCaps({ format: "YUYV", width: -1, height: 1.5 }), "video/x-raw,format=YUY2");
      assert.strictEqual(capsForMessage({}), undefined);
      assert.strictEqual(capsForMessage({ frame: "YUYV" }), undefined);
      assert.strictEqual(capsForMessage({ audio: { format: "S32_LE", rate: 8000, channels: 1 } }), "audio/x-raw,format=S32LE,rate=8000,channels=1,layout=interleaved");
    });

    it("parses caps back into fields", () => {
      assert.deepStrictEqual(parseCaps("video/x-raw,format=YUY2,width=640"), { media: "video/x-raw", fields: { format: "YUY2", width: "640" } });
      assert.deepStrictEqual(parseCaps("image/jpeg"), { media: "image/jpeg", fields: {} });
    });
  });

  describe("names and options", () => {
    it("accepts exactly the documented ring names", () => {
      for (const ok of ["a", "frames", "cam-0.yuyv_1", "x".repeat(200), ".hidden", "..."]) assert.ok(isValidRingName(ok), ok);
      for (const bad of ["", ".", "..", "a/b", "/abs", "x".repeat(201), "tab\t", "ü", 5, null]) assert.ok(!isValidRingName(bad), String(bad));
    });

    it("takes modes as the editor stores them", () => {
      assert.strictEqual(parseRingMode(undefined), 0o600);
      assert.strictEqual(parseRingMode(""), 0o600);
      assert.strictEqual(parseRingMode("640"), 0o640);
      assert.strictEqual(parseRingMode("660"), 0o660);
      assert.throws(() => parseRingMode("666"), /600, 640 or 660/);
      assert.throws(() => parseRingMode("777"), /600, 640 or 660/);
    });

    it("checks delivery and rate", () => {
      assert.strictEqual(checkDelivery(undefined), "every");
      assert.strictEqual(checkDelivery("latest"), "latest");
      assert.throws(() => checkDelivery("sometimes"), /every, latest or snapshot/);
      assert.strictEqual(checkRate(undefined), 10);
      assert.strictEqual(checkRate("2.5"), 2.5);
      for (const bad of [0, -1, 1001, "x", Infinity]) assert.throws(() => checkRate(bad), /rate must be/);
    });
  });

  describe("rate meter", () => {
    it("counts events per second over its window on a controlled clock", () => {
      let now = 0;
      const meter = new RateMeter(2000, () => now);
      for (let i = 0; i < 60; i++) {
        meter.tick();
        now += 1000 / 30;
      }
      assert.ok(Math.abs(meter.rate() - 30) <= 1.5, `rate ${meter.rate()}`);
      now += 5000;
      assert.strictEqual(meter.rate(), 0);
      meter.tick(10);
      assert.strictEqual(meter.rate(), 5);
    });
  });
});
