#!/usr/bin/env python3
"""Checks the fake V4L2 camera end to end through build/probe (and, when they
are installed, v4l2-ctl, v4l2-compliance, ffmpeg, djpeg and node).

Run through selftest.sh, which builds first. Prints TAP-like lines and ends
with "N passed, N failed, N skipped".
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import jpeg_walk  # noqa: E402

LIB = os.path.join(HERE, "build", "libdevplane-fake-v4l2.so")
PROBE = os.path.join(HERE, "build", "probe")
CAP = "/dev/devplane-fake-video0"
META = "/dev/devplane-fake-video1"
ALT_CAP = "/dev/devplane-fake-video2"
ALT_META = "/dev/devplane-fake-video3"

TMP = tempfile.mkdtemp(prefix="devplane-fake-v4l2-")
CTL = os.path.join(TMP, "control")

results = {"passed": 0, "failed": 0, "skipped": 0}
counter = [0]


def report(name, ok, detail=""):
    counter[0] += 1
    if ok is None:
        results["skipped"] += 1
        print("ok %d - %s # SKIP %s" % (counter[0], name, detail))
    elif ok:
        results["passed"] += 1
        print("ok %d - %s%s" % (counter[0], name, (" # " + detail) if detail else ""))
    else:
        results["failed"] += 1
        print("not ok %d - %s # %s" % (counter[0], name, detail))
    sys.stdout.flush()


def env(**extra):
    e = dict(os.environ)
    e["LD_PRELOAD"] = LIB
    e["DEVPLANE_FAKE_V4L2"] = "%s,%s" % (CAP, META)
    e["DEVPLANE_FAKE_V4L2_CONTROL"] = CTL
    e.pop("DEVPLANE_FAKE_V4L2_REAPPEAR_AS", None)
    e.pop("DEVPLANE_FAKE_V4L2_OPTIONS", None)
    for k, v in extra.items():
        if v is None:
            e.pop(k, None)
        else:
            e[k] = v
    return e


def control(text):
    with open(CTL, "w") as f:
        f.write(text)


def probe(*args, extra_env=None, timeout=60):
    p = subprocess.run([PROBE] + list(args), env=env(**(extra_env or {})), capture_output=True, text=True,
                       timeout=timeout)
    events = []
    for line in p.stdout.splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            events.append({"event": "unparsed", "line": line})
    return p.returncode, events, p.stderr


def ev(events, kind):
    return [e for e in events if e.get("event") == kind]


def one(events, kind, **match):
    for e in ev(events, kind):
        if all(e.get(k) == v for k, v in match.items()):
            return e
    return None


def have(tool):
    return shutil.which(tool) is not None


# --------------------------------------------------------------------------

def t_caps():
    control("")
    rc, e, _ = probe("--caps", "-d", CAP)
    c = one(e, "caps")
    ok = (rc == 0 and c and c["driver"] == "uvcvideo" and c["card"] == "devplane fake camera"
          and c["bus_info"] == "usb-0000:00:14.0-1" and c["video_capture"] and c["streaming"]
          and not c["meta_capture"] and c["capabilities"] & 0x80000000)
    return ok, json.dumps(c)


def t_meta():
    rc, e, _ = probe("--caps", "--list", "-d", META)
    c = one(e, "caps")
    fmts = [f["fourcc"] for f in ev(e, "format")]
    ok = c and c["meta_capture"] and not c["video_capture"] and fmts == ["UVCH"]
    # A capture client must refuse the metadata node.
    rc2, e2, _ = probe("-d", META, "-n", "1")
    refused = one(e2, "error", op="capabilities") is not None and rc2 != 0
    return bool(ok and refused), "device_caps=%s formats=%s refused=%s" % (c and c["device_caps"], fmts, refused)


def t_stat():
    rc, e, _ = probe("--stat", "-d", CAP)
    s = one(e, "stat")
    rc2, e2, _ = probe("--stat", "-d", ALT_CAP, extra_env={"DEVPLANE_FAKE_V4L2_REAPPEAR_AS": ALT_CAP + "," + ALT_META})
    s2 = one(e2, "stat")
    ok = s and s["ok"] and s["chr"] and s["major"] == 81 and s2 and not s2["ok"] and s2["errno"] == 2
    return ok, "%s / alt: %s" % (s, s2)


def t_list():
    rc, e, _ = probe("--list", "-d", CAP)
    fmts = {f["fourcc"]: f for f in ev(e, "format") if f["type"] == 1}
    need = {"YUYV", "MJPG", "NV12", "GREY"}
    if not need <= set(fmts):
        return False, "formats %s" % sorted(fmts)
    for fc in need:
        sizes = {(s["width"], s["height"]): s["intervals"] for s in fmts[fc]["sizes"]}
        for wh in [(640, 480), (1280, 720), (1920, 1080)]:
            if wh not in sizes or [1, 30] not in sizes[wh] or [1, 60] not in sizes[wh]:
                return False, "%s %s: %s" % (fc, wh, sizes.get(wh))
    if fmts["MJPG"]["flags"] != 1:
        return False, "MJPG not flagged compressed"
    inp = one(e, "input")
    return inp is not None and inp["name"] == "Camera 1", "4 formats x 5 sizes x [60,30,15] fps"


def t_controls():
    rc, e, _ = probe("--controls", "-d", CAP)
    names = {c["name"]: c for c in ev(e, "control")}
    need = ["brightness", "contrast", "saturation", "white_balance_temperature_auto", "white_balance_temperature",
            "exposure_auto", "exposure_absolute", "focus_auto", "focus_absolute"]
    missing = [n for n in need if n not in names]
    if missing:
        return False, "missing %s" % missing
    rc, e2, _ = probe("--ext-controls", "-d", CAP)
    if len(ev(e2, "ext_control")) != len(ev(e, "control")):
        return False, "QUERY_EXT_CTRL and QUERYCTRL enumerate differently"
    wb = names["white_balance_temperature"]
    ok = (wb["flags"] & 0x10) and names["exposure_auto"]["menu"] == {"1": "Manual Mode", "3": "Aperture Priority Mode"}
    return bool(ok), "%d controls" % len(names)


def t_control_set():
    # One process: controls persist per device within it, as on a real camera.
    # probe applies every --set in order, then every --set-ext, then every --get.
    rc, e, _ = probe("-d", CAP, "--set", "brightness=10", "--set", "brightness=1000",
                     "--set", "white_balance_temperature=5000", "--set", "white_balance_temperature_auto=0",
                     "--set", "focus_absolute=13", "--set", "exposure_auto=2",
                     "--set-ext", "white_balance_temperature=5000",
                     "--get", "brightness", "--get", "white_balance_temperature")
    s = ev(e, "set")
    gets = {g["name"]: g for g in ev(e, "get")}
    checks = [
        s[0]["ok"] and s[0]["now"] == 10,
        s[1]["ok"] and s[1]["returned"] == 64,             # clamped to max
        not s[2]["ok"] and s[2]["errno"] == 13,            # inactive while auto WB is on
        s[3]["ok"],
        not s[4]["ok"] and s[4]["errno"] == 13,            # focus_auto still on
        not s[5]["ok"] and s[5]["errno"] == 22,            # menu entry the camera lacks
        s[6]["ok"] and s[6]["ext"] and s[6]["now"] == 5000,  # S_EXT_CTRLS once manual
        gets["brightness"]["value"] == 64,
        gets["white_balance_temperature"]["value"] == 5000 and not (gets["white_balance_temperature"]["flags"] & 0x10),
    ]
    return all(checks), "checks %s" % checks


def t_try_fmt():
    rc, e, _ = probe("-d", CAP, "--try", "ABCD:1000x700")
    t = one(e, "try_fmt")
    return t and t["fourcc"] == "YUYV" and (t["width"], t["height"]) == (1280, 720), json.dumps(t)


def stream_ok(e, frames, fps=None, tol=None):
    s = one(e, "summary", session="first")
    if not s:
        return False, "no summary"
    frames_ok = [f for f in ev(e, "frame")]
    # A consumer that falls behind (a loaded machine) makes the fake drop
    # frames as a driver does, counting them in the frame header; only gaps
    # that the count does not explain are the fake's fault.
    explained = frames_ok[-1]["hdr_drops"] - frames_ok[0]["hdr_drops"] if frames_ok else 0
    ok = (s["frames"] == frames and s["gaps"] == explained and s["content_errors"] == 0 and s["errors"] == 0
          and all(f["monotonic"] for f in frames_ok))
    if fps is not None:
        ok = ok and abs(s["fps"] - fps) <= tol
    return ok, "frames=%d gaps=%d content_errors=%d fps=%.2f" % (s["frames"], s["gaps"], s["content_errors"], s["fps"])


def t_yuyv():
    control("")
    rc, e, _ = probe("-d", CAP, "-f", "YUYV", "-s", "640x480", "-r", "30", "-n", "30", "--maps")
    ok, d = stream_ok(e, 30, 30, 1.0)
    m = one(e, "maps")
    return ok and rc == 0 and m["fake_buffer_mappings"] == 0, d + " leftover_mappings=%s" % m["fake_buffer_mappings"]


def t_1080p60():
    control("")
    rc, e, _ = probe("-d", CAP, "-f", "YUYV", "-s", "1920x1080", "-r", "60", "-n", "180", "--no-frame-lines")
    ok, d = stream_ok(e, 180, 60, 1.0)
    s = one(e, "summary")
    wall_ok = 2.8 < s["wall_s"] < 4.0
    fmt = one(e, "format")
    return ok and wall_ok and fmt["interval"] == [1, 60], d + " wall=%.3fs" % s["wall_s"]


def t_formats_content():
    out = []
    for fc in ("NV12", "GREY"):
        rc, e, _ = probe("-d", CAP, "-f", fc, "-s", "1280x720", "-n", "10", "--no-frame-lines")
        ok, d = stream_ok(e, 10)
        out.append((fc, ok))
    return all(ok for _, ok in out), str(out)


def mjpeg_frames(size):
    """Captures five MJPEG frames of the given size into a directory (once)."""
    d = os.path.join(TMP, "mjpeg-" + size)
    if not os.path.isdir(d):
        os.makedirs(d)
        control("")
        rc, e, _ = probe("-d", CAP, "-f", "MJPG", "-s", size, "-n", "5", "--save", d, "--no-frame-lines")
        ok, det = stream_ok(e, 5)
        if not ok:
            raise AssertionError(size + " " + det)
    return d


def t_mjpeg():
    details = []
    for size in ("640x480", "1280x720", "1920x1080"):
        d = mjpeg_frames(size)
        files = sorted(os.listdir(d))
        if len(files) != 5:
            return False, "%s: %d files" % (size, len(files))
        w, h = map(int, size.split("x"))
        for i, name in enumerate(files):
            data = open(os.path.join(d, name), "rb").read()
            r = jpeg_walk.walk(data, decode=(i == 0))
            if (r["width"], r["height"]) != (w, h) or r["dpfk"] is None or r["dpfk_offset"] != 24:
                return False, "%s %s: %s" % (size, name, r)
            if r["dpfk"]["bytes"] != len(data):
                return False, "header byte count %d != %d" % (r["dpfk"]["bytes"], len(data))
            if i == 0:
                seq, bpr = r["dpfk"]["seq"], r["blocks_per_row"]
                bad = sum(1 for k, dc in enumerate(r["luma_dc"])
                          if dc // 8 + 128 != (8 * (k % bpr) + 8 * (k // bpr) + seq) & 0xFF)
                if bad:
                    return False, "%s: %d luma blocks off the pattern" % (size, bad)
        details.append("%s %dB" % (size, len(data)))
    # The walker must be able to fail: flip a bit inside the scan data.
    broken = bytearray(data)
    broken[len(broken) // 2] ^= 0x5A
    try:
        jpeg_walk.walk(bytes(broken))
        return False, "walker accepted a corrupted scan"
    except jpeg_walk.JpegError:
        pass
    return True, ", ".join(details)


def t_djpeg():
    if not have("djpeg"):
        return None
    d = mjpeg_frames("1920x1080")
    f = sorted(os.listdir(d))[0]
    p = subprocess.run(["djpeg", "-pnm", os.path.join(d, f)], capture_output=True)
    head = p.stdout[:20].split()
    return p.returncode == 0 and head[1:3] == [b"1920", b"1080"] and not p.stderr, "%s %s" % (head[:3], p.stderr[:100])


def t_ffprobe_jpeg():
    if not have("ffprobe"):
        return None
    d = mjpeg_frames("1280x720")
    f = os.path.join(d, sorted(os.listdir(d))[0])
    p = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width,height,pix_fmt", "-of",
                        "json", f], capture_output=True, text=True)
    s = json.loads(p.stdout)["streams"][0] if p.returncode == 0 else {}
    return s.get("codec_name") == "mjpeg" and s.get("width") == 1280 and not p.stderr, json.dumps(s)


def t_userptr():
    rc, e, _ = probe("-d", CAP, "--userptr", "-n", "20", "-s", "1280x720", "--no-frame-lines")
    return stream_ok(e, 20)


def t_wait_modes():
    res = {}
    for mode in ("block", "select", "epoll"):
        rc, e, _ = probe("-d", CAP, "--wait", mode, "-n", "10", "--no-frame-lines")
        res[mode] = stream_ok(e, 10)[0]
    return all(res.values()), str(res)


def t_eagain_second_fd():
    rc, e, _ = probe("-d", CAP, "-n", "3", "--check-eagain", "--second-fd")
    a = one(e, "eagain_check")
    s = one(e, "second_fd")
    ok = a and a["ok"] and s and s["open_ok"] and s["reqbufs_errno"] == 16 and s["s_fmt_errno"] == 16
    return ok, "%s %s" % (a, s)


def t_stop_wakes():
    res = {}
    for mode in ("block", "poll"):
        rc, e, _ = probe("-d", CAP, "--wait", mode, "-n", "1000", "--stop-after-ms", "200", "--no-frame-lines")
        st = one(e, "stopped")
        res[mode] = bool(st and st["after_ms"] < 400)
    return all(res.values()), str(res)


def t_drops():
    control("")
    rc, e, _ = probe("-d", CAP, "-b", "2", "-n", "10", "--consumer-delay-ms", "100")
    s = one(e, "summary")
    drops = [f["hdr_drops"] for f in ev(e, "frame")]
    ok = s["gaps"] > 0 and s["content_errors"] == 0 and drops[-1] > 0 and drops[-1] >= s["gaps"]
    return ok, "gaps=%d header drops=%s" % (s["gaps"], drops[-1])


def t_fast():
    control("fast=1\n")
    rc, e, _ = probe("-d", CAP, "-n", "300", "--no-frame-lines")
    s = one(e, "summary")
    ok = s["frames"] == 300 and s["gaps"] == 0 and s["fps"] > 200 and s["content_errors"] == 0
    rc, e2, _ = probe("-d", CAP, "-n", "100", "--no-frame-lines",
                      extra_env={"DEVPLANE_FAKE_V4L2_OPTIONS": "fast=1", "DEVPLANE_FAKE_V4L2_CONTROL": None})
    s2 = one(e2, "summary")
    return ok and s2["fps"] > 200, "control file: %.0f fps, options env: %.0f fps" % (s["fps"], s2["fps"])


def t_slow():
    control("slow_ms=50\n")
    rc, e, _ = probe("-d", CAP, "-r", "30", "-n", "10", "--no-frame-lines")
    s = one(e, "summary")
    want = 1.0 / (1.0 / 30 + 0.050)
    return abs(s["fps"] - want) < 1.0, "fps=%.2f want %.2f" % (s["fps"], want)


def t_unplug():
    control("unplug_at=10\n")
    rc, e, _ = probe("-d", CAP, "-n", "30", "--reopen", CAP, "--reopen-timeout-ms", "300", "--no-frame-lines")
    s = one(e, "summary", session="first")
    err = one(e, "error", op="VIDIOC_DQBUF")
    r = one(e, "reopen")
    ok = (s["frames"] == 10 and s["last_seq"] == 9 and err and err["errno"] == 19 and r and not r["ok"]
          and r["first_errno"] == 2)
    return ok, "frames=%d last_seq=%d dqbuf_errno=%s reopen=%s" % (s["frames"], s["last_seq"], err and err["errno"], r)


def t_unplug_now():
    control("")
    p = subprocess.Popen([PROBE, "-d", CAP, "-n", "300", "--no-frame-lines"], env=env(), stdout=subprocess.PIPE,
                         text=True)
    time.sleep(0.5)
    control("unplug=1\n")
    out, _ = p.communicate(timeout=20)
    e = [json.loads(x) for x in out.splitlines()]
    s = one(e, "summary")
    err = one(e, "error", op="VIDIOC_DQBUF")
    return err and err["errno"] == 19 and 5 < s["frames"] < 40, "frames=%d wall=%.2f" % (s["frames"], s["wall_s"])


def t_live_control():
    control("")
    p = subprocess.Popen([PROBE, "-d", CAP, "-n", "120", "--no-frame-lines"], env=env(), stdout=subprocess.PIPE,
                         text=True)
    time.sleep(1.0)
    control("unplug_at=60\n")
    out, _ = p.communicate(timeout=20)
    e = [json.loads(x) for x in out.splitlines()]
    s = one(e, "summary")
    err = one(e, "error", op="VIDIOC_DQBUF")
    return err and err["errno"] == 19 and s["last_seq"] == 59, "last_seq=%d" % s["last_seq"]


def t_reappear():
    control("unplug_at=5\nreappear_after_ms=300\n")
    rc, e, _ = probe("-d", CAP, "-n", "30", "--reopen", CAP, "--reopen-frames", "10", "--no-frame-lines")
    r = one(e, "reopen")
    s2 = one(e, "summary", session="reopened")
    opens = ev(e, "open")
    ok = (r and r["ok"] and 290 <= r["after_ms"] < 1000 and r["first_errno"] == 2 and s2 and s2["frames"] == 10
          and s2["first_seq"] == 0 and len(opens) == 2 and opens[0]["bus_info"] == opens[1]["bus_info"] and rc == 0)
    return ok, "reopen after %.0f ms, second session %s frames" % (r["after_ms"] if r else -1, s2 and s2["frames"])


def t_reappear_as():
    control("unplug_at=3\nreappear_after_ms=100\n")
    rc, e, _ = probe("-d", CAP, "-n", "30", "--reopen", ALT_CAP, "--reopen-frames", "5", "--no-frame-lines",
                     extra_env={"DEVPLANE_FAKE_V4L2_REAPPEAR_AS": ALT_CAP + "," + ALT_META})
    r = one(e, "reopen")
    s2 = one(e, "summary", session="reopened")
    opens = ev(e, "open")
    ok = r and r["ok"] and s2 and s2["frames"] == 5 and opens[-1]["path"] == ALT_CAP and rc == 0
    return ok, "reopened as %s after %.0f ms" % (opens[-1]["path"], r["after_ms"] if r else -1)


def t_eio():
    control("eio_at=5\n")
    rc, e, _ = probe("-d", CAP, "-n", "10", "--continue-on-error", "--no-frame-lines")
    s = one(e, "summary")
    errs = [x["errno"] for x in ev(e, "error")]
    ok = errs == [5] and s["frames"] == 10 and s["gaps"] == 1 and s["content_errors"] == 0
    return ok, "errors=%s gaps=%d" % (errs, s["gaps"])


def t_error_flag():
    control("error_at=3\n")
    rc, e, _ = probe("-d", CAP, "-n", "6")
    flagged = [f["seq"] for f in ev(e, "frame") if f["flags"] & 0x40]
    return flagged == [3], "ERROR flag on %s" % flagged


def t_busy_eacces():
    control("busy=1\n")
    rc, e, _ = probe("-d", CAP, "-n", "1")
    busy = one(e, "error", op="open")
    control("eacces=1\n")
    rc, e2, _ = probe("-d", CAP, "-n", "1", "--access")
    acc = one(e2, "error", op="open")
    ax = one(e2, "access")
    control("")
    ok = busy and busy["errno"] == 16 and acc and acc["errno"] == 13 and ax and ax["errno"] == 13
    return ok, "busy=%s eacces=%s access=%s" % (busy and busy["errno"], acc and acc["errno"], ax and ax["errno"])


def t_formats_filter():
    control("formats=MJPG,NV12\n")
    rc, e, _ = probe("-d", CAP, "--list")
    fmts = [f["fourcc"] for f in ev(e, "format")]
    control("")
    return fmts == ["MJPG", "NV12"], str(fmts)


def t_two_cameras():
    paths = "%s,%s,/dev/devplane-fake-video4:capture" % (CAP, META)
    rc, e, _ = probe("-d", "/dev/devplane-fake-video4", "--caps", "-n", "3", "--no-frame-lines",
                     extra_env={"DEVPLANE_FAKE_V4L2": paths})
    c = one(e, "caps")
    ok, d = stream_ok(e, 3)
    return ok and c["bus_info"] == "usb-0000:00:14.0-2", "bus_info=%s %s" % (c["bus_info"], d)


def t_node():
    if not have("node"):
        return None
    script = r"""
const fs = require('fs');
const p = process.argv[1];
const out = {};
const st = fs.statSync(p);
out.chr = st.isCharacterDevice();
out.major = Math.floor(st.rdev / 256) & 0xfff;
out.exists = fs.existsSync(p);
out.missing = fs.existsSync(p + 'x');
fs.accessSync(p, fs.constants.R_OK | fs.constants.W_OK);
const fd = fs.openSync(p, 'r+');
out.fstatChr = fs.fstatSync(fd).isCharacterDevice();
fs.closeSync(fd);
const fd2 = fs.openSync('/proc/self/stat', 'r');
out.reusedFdIsFile = fs.fstatSync(fd2).isFile();
fs.closeSync(fd2);
fs.stat(p, (e, s) => { out.asyncChr = !e && s.isCharacterDevice(); console.log(JSON.stringify(out)); });
"""
    p = subprocess.run(["node", "-e", script, CAP], env=env(), capture_output=True, text=True, timeout=30)
    try:
        o = json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return False, p.stderr[-300:]
    ok = (o["chr"] and o["major"] == 81 and o["exists"] and not o["missing"] and o["fstatChr"] and o["asyncChr"]
          and o["reusedFdIsFile"])
    return ok, json.dumps(o)


def t_v4l2ctl():
    if not have("v4l2-ctl"):
        return None
    e = env()
    a = subprocess.run(["v4l2-ctl", "-d", CAP, "--all"], env=e, capture_output=True, text=True, timeout=30)
    b = subprocess.run(["v4l2-ctl", "-d", CAP, "--list-formats-ext"], env=e, capture_output=True, text=True,
                       timeout=30)
    c = subprocess.run(["v4l2-ctl", "-d", CAP, "--set-fmt-video=width=1280,height=720,pixelformat=MJPG",
                        "--stream-mmap", "--stream-count=10"], env=e, capture_output=True, text=True, timeout=30)
    d = subprocess.run(["v4l2-ctl", "-d", CAP, "--stream-user", "--stream-count=10"], env=e, capture_output=True,
                       text=True, timeout=30)
    ok = (a.returncode == 0 and "uvcvideo" in a.stdout and "white_balance_temperature_auto" in a.stdout
          and b.returncode == 0 and "'MJPG'" in b.stdout and "1920x1080" in b.stdout
          and c.returncode == 0 and d.returncode == 0 and "returned -1" not in c.stderr + d.stderr)
    return ok, "rc all=%d list=%d mmap=%d user=%d %s" % (a.returncode, b.returncode, c.returncode, d.returncode,
                                                         (a.stderr + c.stderr + d.stderr).replace("<", "").strip()[:200])


# Failures the fake accepts, with the reason, keyed by v4l2-compliance test name.
COMPLIANCE_KNOWN = {
    # v4l2-compliance 1.22 predates uvcvideo's EACCES for controls whose auto
    # partner is on; newer versions accept it for uvcvideo.
    "VIDIOC_G/S_CTRL": "EACCES on inactive control",
    "VIDIOC_G/S/TRY_EXT_CTRLS": "EACCES on inactive control",
    # An eventfd cannot raise POLLPRI, so control events are not delivered.
    "VIDIOC_(UN)SUBSCRIBE_EVENT/DQEVENT": "no POLLPRI on an eventfd",
}


def t_compliance():
    if not have("v4l2-compliance"):
        return None
    control("")
    p = subprocess.run(["v4l2-compliance", "-d", CAP, "-s"], env=env(), capture_output=True, text=True, timeout=300)
    fails = []
    for line in p.stdout.splitlines():
        line = line.strip()
        if line.startswith("test ") and line.endswith(": FAIL"):
            fails.append(line[5:-6])
    unexpected = [f for f in fails if f not in COMPLIANCE_KNOWN]
    total = [l for l in p.stdout.splitlines() if l.startswith("Total")]
    streaming = all(("test %s: OK" % t) in p.stdout for t in
                    ("MMAP (select)", "MMAP (epoll)", "USERPTR (select)", "blocking wait"))
    return not unexpected and streaming, "%s; unexpected=%s" % (total[0] if total else "no total", unexpected)


def t_ffmpeg():
    if not have("ffmpeg"):
        return None
    e = env()
    a = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-f", "v4l2", "-input_format",
                        "yuyv422", "-video_size", "640x480", "-i", CAP, "-frames:v", "10", "-f", "null", "-"],
                       env=e, capture_output=True, text=True, timeout=60)
    png = os.path.join(TMP, "ffmpeg-mjpeg.png")
    b = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-f", "v4l2", "-input_format",
                        "mjpeg", "-video_size", "1920x1080", "-i", CAP, "-frames:v", "10", "-update", "1", "-y", png],
                       env=e, capture_output=True, text=True, timeout=60)
    ok = a.returncode == 0 and b.returncode == 0 and not (a.stderr + b.stderr).strip() and os.path.getsize(png) > 0
    return ok, "yuyv rc=%d mjpeg rc=%d %s" % (a.returncode, b.returncode, (a.stderr + b.stderr)[:200])


CHECKS = [
    ("QUERYCAP of the capture node", t_caps),
    ("metadata node reports META_CAPTURE only and a capture client refuses it", t_meta),
    ("stat: character device 81:N; absent alternate path is ENOENT", t_stat),
    ("formats, sizes, intervals (1/30 and 1/60 everywhere), input", t_list),
    ("controls enumerate (QUERYCTRL and QUERY_EXT_CTRL)", t_controls),
    ("controls get/set: clamp, inactive EACCES, menu gaps, ext ctrls", t_control_set),
    ("TRY_FMT falls back to YUYV and the nearest size", t_try_fmt),
    ("YUYV 640x480@30: header, pattern, sequence, no mapping left", t_yuyv),
    ("YUYV 1920x1080@60 paced for 3 s", t_1080p60),
    ("NV12 and GREY content", t_formats_content),
    ("MJPEG frames are valid baseline JPEGs with the pattern (3 sizes)", t_mjpeg),
    ("djpeg decodes a 1080p frame", t_djpeg),
    ("ffprobe reads an MJPEG frame", t_ffprobe_jpeg),
    ("USERPTR streaming", t_userptr),
    ("blocking DQBUF, select, epoll", t_wait_modes),
    ("non-blocking DQBUF EAGAIN; second fd gets EBUSY", t_eagain_second_fd),
    ("STREAMOFF from another thread wakes DQBUF and poll", t_stop_wakes),
    ("slow consumer: frames dropped, sequence jumps", t_drops),
    ("fast=1 (control file and OPTIONS env)", t_fast),
    ("slow_ms=50", t_slow),
    ("unplug_at=10: ENODEV, path gone", t_unplug),
    ("unplug=1 written mid-stream", t_unplug_now),
    ("control file re-read mid-stream (unplug_at=60)", t_live_control),
    ("reappear_after_ms=300 at the same path", t_reappear),
    ("reappear under DEVPLANE_FAKE_V4L2_REAPPEAR_AS", t_reappear_as),
    ("eio_at=5: one EIO, stream goes on", t_eio),
    ("error_at=3: V4L2_BUF_FLAG_ERROR", t_error_flag),
    ("busy=1 -> EBUSY, eacces=1 -> EACCES", t_busy_eacces),
    ("formats= restricts enumeration", t_formats_filter),
    ("second camera in the list", t_two_cameras),
    ("node fs: stat/exists/open/close through libuv", t_node),
    ("v4l2-ctl --all, --list-formats-ext, --stream-mmap, --stream-user", t_v4l2ctl),
    ("v4l2-compliance -s (known gaps only)", t_compliance),
    ("ffmpeg captures YUYV and decodes MJPEG", t_ffmpeg),
]


def main():
    only = sys.argv[1:]
    for name, fn in CHECKS:
        if only and not any(o in fn.__name__ for o in only):
            continue
        r = None
        t0 = time.time()
        try:
            r = fn()
        except Exception as e:
            report(name, False, "%s: %s" % (type(e).__name__, e))
            continue
        if r is None:
            report(name, None, "tool not installed")
        elif isinstance(r, tuple):
            report(name, bool(r[0]), "%s (%.1fs)" % (r[1], time.time() - t0))
        else:
            report(name, bool(r), "%.1fs" % (time.time() - t0))
    shutil.rmtree(TMP, ignore_errors=True)
    print("%d passed, %d failed, %d skipped" % (results["passed"], results["failed"], results["skipped"]))
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
