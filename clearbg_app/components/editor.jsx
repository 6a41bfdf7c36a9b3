// The cut-out editor's interactive part: a before/after compare slider, zoom and pan, a preview
// backdrop, and an erase/restore brush drawn on a canvas at once, its strokes sent to the server
// (in full-resolution image coordinates) through `onStrokesChange`. The server applies them at full
// resolution and renders `previewUrl`; the canvas shows the stroke until that preview has loaded.
import React, { useCallback, useEffect, useRef, useState } from "react";

const MIN_ZOOM = 1;
const MAX_ZOOM = 16;
const MAX_STROKES = 400;
const MAX_POINTS = 2000;
const SOFT_SIGMA = 0.25; // as services/image_edits.py: solid to 3/4 of the radius, then blurred
const BACKDROPS = {
  checkerboard: {
    backgroundColor: "white",
    backgroundImage:
      "linear-gradient(45deg, #d4d4d8 25%, transparent 25%), linear-gradient(-45deg, #d4d4d8 25%, transparent 25%)," +
      " linear-gradient(45deg, transparent 75%, #d4d4d8 75%), linear-gradient(-45deg, transparent 75%, #d4d4d8 75%)",
    backgroundSize: "20px 20px",
    backgroundPosition: "0 0, 0 10px, 10px -10px, -10px 0px",
  },
  white: { backgroundColor: "#ffffff" },
  black: { backgroundColor: "#000000" },
};

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = reject;
    image.src = src;
  });
}

// Paint one stroke on `ctx` (sized like the preview) the way the server applies it.
function paintStroke(ctx, stroke, scale, original) {
  const full = Math.max(stroke.radius * scale, 0.5);
  const blur = stroke.soft ? SOFT_SIGMA * full : 0;
  const radius = full - blur;
  const path = (target) => {
    target.lineCap = "round";
    target.lineJoin = "round";
    target.lineWidth = 2 * radius;
    target.strokeStyle = "#000";
    target.fillStyle = "#000";
    target.filter = blur ? `blur(${blur}px)` : "none";
    target.beginPath();
    const [first, ...rest] = stroke.points;
    if (rest.length === 0) {
      target.arc(first[0] * scale, first[1] * scale, radius, 0, 2 * Math.PI);
      target.fill();
    } else {
      target.moveTo(first[0] * scale, first[1] * scale);
      for (const [x, y] of rest) target.lineTo(x * scale, y * scale);
      target.stroke();
    }
    target.filter = "none";
  };
  if (stroke.mode === "erase") {
    ctx.globalCompositeOperation = "destination-out";
    path(ctx);
    ctx.globalCompositeOperation = "source-over";
    return;
  }
  if (!original) return;
  const mask = document.createElement("canvas");
  mask.width = ctx.canvas.width;
  mask.height = ctx.canvas.height;
  const maskCtx = mask.getContext("2d");
  path(maskCtx);
  maskCtx.globalCompositeOperation = "source-in";
  maskCtx.drawImage(original, 0, 0, mask.width, mask.height);
  ctx.drawImage(mask, 0, 0);
}

// The stage is at most this share of the window's height, so the download row stays on screen.
const STAGE_MAX_VH = 45;

export function Editor({
  imageId,
  originalUrl,
  cutoutUrl,
  previewUrl,
  fullWidth,
  fullHeight,
  backdropColour,
  onStrokesChange,
}) {
  const stageRef = useRef(null);
  const canvasRef = useRef(null);
  const images = useRef({ cutout: null, original: null });
  const drawing = useRef(null);
  const pointers = useRef(new Map());
  const gesture = useRef(null);
  const sentAt = useRef(0);
  const [strokes, setStrokes] = useState([]);
  const [redo, setRedo] = useState([]);
  const [tool, setTool] = useState("move");
  const [brush, setBrush] = useState(24);
  const [soft, setSoft] = useState(false);
  const [split, setSplit] = useState(50);
  const [zoom, setZoom] = useState(1);
  const [pan, setPan] = useState({ x: 0, y: 0 });
  const [backdrop, setBackdrop] = useState("checkerboard");
  const [pending, setPending] = useState(false);
  const [shownUrl, setShownUrl] = useState(previewUrl);
  const [updateMs, setUpdateMs] = useState("");
  const [cursor, setCursor] = useState(null); // the keyboard brush's position on the stage, while it has focus

  const aspect = fullHeight / Math.max(1, fullWidth);
  const stageWidth = () => (stageRef.current ? stageRef.current.clientWidth : 1);
  const imageScale = () => fullWidth / stageWidth(); // image px per content px at zoom 1

  // Redraw the canvas: the model's cut-out with every local stroke.
  const redraw = useCallback(
    (list, extra) => {
      const canvas = canvasRef.current;
      const { cutout, original } = images.current;
      if (!canvas || !cutout) return;
      canvas.width = cutout.naturalWidth;
      canvas.height = cutout.naturalHeight;
      const ctx = canvas.getContext("2d");
      ctx.clearRect(0, 0, canvas.width, canvas.height);
      ctx.drawImage(cutout, 0, 0);
      const scale = canvas.width / fullWidth;
      for (const stroke of extra ? [...list, extra] : list) paintStroke(ctx, stroke, scale, original);
    },
    [fullWidth],
  );

  useEffect(() => {
    // A new result: bring it into view (the page's CSP forbids Reflex's script-based scroll_to).
    if (stageRef.current) stageRef.current.scrollIntoView({ behavior: "smooth", block: "center" });
  }, [imageId]);

  useEffect(() => {
    let cancelled = false;
    Promise.all([loadImage(cutoutUrl), loadImage(originalUrl)]).then(([cutout, original]) => {
      if (cancelled) return;
      images.current = { cutout, original };
      fetch(`/api/images/${imageId}/edits`, { credentials: "same-origin" })
        .then((response) => (response.ok ? response.json() : { strokes: [] }))
        .then((kept) => {
          if (cancelled) return;
          setStrokes(kept.strokes || []);
          setRedo([]);
          redraw(kept.strokes || []);
        });
    });
    return () => {
      cancelled = true;
    };
  }, [imageId, cutoutUrl, originalUrl, redraw]);

  // A new server preview: keep showing the canvas until it has loaded.
  useEffect(() => {
    if (previewUrl === shownUrl) return;
    let cancelled = false;
    loadImage(previewUrl)
      .then(() => {
        if (cancelled) return;
        setShownUrl(previewUrl);
        setPending(false);
        if (sentAt.current) {
          setUpdateMs(String(Math.round(performance.now() - sentAt.current)));
          sentAt.current = 0;
        }
      })
      .catch(() => !cancelled && setPending(false));
    return () => {
      cancelled = true;
    };
  }, [previewUrl, shownUrl]);

  const commit = useCallback(
    (list, redoList) => {
      setStrokes(list);
      setRedo(redoList);
      redraw(list);
      setPending(true);
      sentAt.current = performance.now();
      onStrokesChange && onStrokesChange(list);
    },
    [onStrokesChange, redraw],
  );

  const undo = useCallback(() => {
    if (!strokes.length) return;
    commit(strokes.slice(0, -1), [...redo, strokes[strokes.length - 1]]);
  }, [strokes, redo, commit]);
  const redoLast = useCallback(() => {
    if (!redo.length) return;
    commit([...strokes, redo[redo.length - 1]], redo.slice(0, -1));
  }, [strokes, redo, commit]);
  const resetEdits = useCallback(() => commit([], []), [commit]);

  useEffect(() => {
    const onKey = (event) => {
      if (!(event.ctrlKey || event.metaKey) || event.key.toLowerCase() !== "z") return;
      const target = event.target;
      if (target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA")) return;
      event.preventDefault();
      event.shiftKey ? redoLast() : undo();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [undo, redoLast]);

  const clampPan = (next, z) => {
    const width = stageWidth();
    const height = width * aspect;
    return {
      x: Math.min(0, Math.max(width - width * z, next.x)),
      y: Math.min(0, Math.max(height - height * z, next.y)),
    };
  };
  const zoomAt = (factor, cx, cy) => {
    setZoom((z) => {
      const next = Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, z * factor));
      setPan((p) => clampPan({ x: cx - ((cx - p.x) * next) / z, y: cy - ((cy - p.y) * next) / z }, next));
      return next;
    });
  };
  const zoomCentre = (factor) => {
    const width = stageWidth();
    zoomAt(factor, width / 2, (width * aspect) / 2);
  };
  const fit = () => {
    setZoom(1);
    setPan({ x: 0, y: 0 });
  };
  const actualSize = () => {
    const cutout = images.current.cutout;
    const target = cutout ? cutout.naturalWidth / stageWidth() : 1;
    const next = Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, target));
    const width = stageWidth();
    setZoom(next);
    setPan(clampPan({ x: (width - width * next) / 2, y: (width * aspect - width * aspect * next) / 2 }, next));
  };

  // Stage coordinates of a pointer event, and the full-resolution image point under it.
  const local = (event) => {
    const rect = stageRef.current.getBoundingClientRect();
    return { x: event.clientX - rect.left, y: event.clientY - rect.top };
  };
  const toImage = ({ x, y }) => {
    const s = imageScale();
    return [Math.round(((x - pan.x) / zoom) * s * 10) / 10, Math.round(((y - pan.y) / zoom) * s * 10) / 10];
  };

  useEffect(() => {
    const stage = stageRef.current;
    if (!stage) return;
    const onWheel = (event) => {
      event.preventDefault();
      const rect = stage.getBoundingClientRect();
      zoomAt(event.deltaY < 0 ? 1.2 : 1 / 1.2, event.clientX - rect.left, event.clientY - rect.top);
    };
    stage.addEventListener("wheel", onWheel, { passive: false });
    return () => stage.removeEventListener("wheel", onWheel);
  });

  const onPointerDown = (event) => {
    stageRef.current.setPointerCapture(event.pointerId);
    pointers.current.set(event.pointerId, local(event));
    if (pointers.current.size === 2) {
      drawing.current = null;
      redraw(strokes);
      const [a, b] = [...pointers.current.values()];
      gesture.current = { pinch: Math.hypot(a.x - b.x, a.y - b.y), zoom };
      return;
    }
    if (tool === "move") {
      gesture.current = { start: local(event), pan };
      return;
    }
    const radius = Math.max(0.5, (brush / 2 / zoom) * imageScale());
    drawing.current = { mode: tool, radius: Math.round(radius * 10) / 10, soft, points: [toImage(local(event))] };
    setPending(true);
    redraw(strokes, drawing.current);
  };
  const onPointerMove = (event) => {
    if (!pointers.current.has(event.pointerId)) return;
    pointers.current.set(event.pointerId, local(event));
    if (pointers.current.size === 2 && gesture.current && gesture.current.pinch) {
      const [a, b] = [...pointers.current.values()];
      const factor = Math.hypot(a.x - b.x, a.y - b.y) / gesture.current.pinch;
      const target = Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, gesture.current.zoom * factor));
      zoomAt(target / zoom, (a.x + b.x) / 2, (a.y + b.y) / 2);
      return;
    }
    if (drawing.current) {
      if (drawing.current.points.length < MAX_POINTS) drawing.current.points.push(toImage(local(event)));
      redraw(strokes, drawing.current);
    } else if (gesture.current && gesture.current.start) {
      const here = local(event);
      const { start, pan: from } = gesture.current;
      setPan(clampPan({ x: from.x + here.x - start.x, y: from.y + here.y - start.y }, zoom));
    }
  };
  const onPointerUp = (event) => {
    pointers.current.delete(event.pointerId);
    if (drawing.current) {
      const stroke = drawing.current;
      drawing.current = null;
      if (strokes.length < MAX_STROKES) commit([...strokes, stroke], []);
    }
    if (pointers.current.size === 0) gesture.current = null;
  };

  // The brush by keyboard: with the stage focused, the arrow keys move the brush (Shift: finer) or, with
  // Move, pan; Space or Enter puts the brush down and lifts it again (the stroke is then kept); Escape drops it.
  const onStageKey = (event) => {
    const steps = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    const width = stageWidth();
    const here = cursor || { x: width / 2, y: (width * aspect) / 2 };
    if (event.key in steps) {
      const [dx, dy] = steps[event.key].map((value) => value * (event.shiftKey ? 2 : 10));
      if (tool === "move") {
        setPan((p) => clampPan({ x: p.x - dx, y: p.y - dy }, zoom));
      } else {
        const next = { x: Math.min(width, Math.max(0, here.x + dx)), y: Math.min(width * aspect, Math.max(0, here.y + dy)) };
        setCursor(next);
        if (drawing.current && drawing.current.points.length < MAX_POINTS) {
          drawing.current.points.push(toImage(next));
          redraw(strokes, drawing.current);
        }
      }
    } else if ((event.key === " " || event.key === "Enter") && tool !== "move") {
      if (drawing.current) {
        const stroke = drawing.current;
        drawing.current = null;
        if (strokes.length < MAX_STROKES) commit([...strokes, stroke], []);
      } else {
        const radius = Math.max(0.5, (brush / 2 / zoom) * imageScale());
        drawing.current = { mode: tool, radius: Math.round(radius * 10) / 10, soft, points: [toImage(here)] };
        setCursor(here);
        redraw(strokes, drawing.current);
      }
    } else if (event.key === "Escape" && drawing.current) {
      drawing.current = null;
      redraw(strokes);
    } else {
      return;
    }
    event.preventDefault();
  };

  const onSliderKey = (event) => {
    const steps = { ArrowLeft: -2, ArrowDown: -2, ArrowRight: 2, ArrowUp: 2, PageDown: -10, PageUp: 10 };
    if (event.key in steps) setSplit((s) => Math.min(100, Math.max(0, s + steps[event.key])));
    else if (event.key === "Home") setSplit(0);
    else if (event.key === "End") setSplit(100);
    else return;
    event.preventDefault();
    event.stopPropagation(); // the stage's own keys (the keyboard brush) are not for the slider
  };
  const onSliderPointer = (event) => {
    event.stopPropagation();
    const handle = event.currentTarget;
    handle.setPointerCapture(event.pointerId);
    const move = (e) => {
      const rect = stageRef.current.getBoundingClientRect();
      setSplit(Math.min(100, Math.max(0, ((e.clientX - rect.left) / rect.width) * 100)));
    };
    const up = () => {
      handle.removeEventListener("pointermove", move);
      handle.removeEventListener("pointerup", up);
    };
    handle.addEventListener("pointermove", move);
    handle.addEventListener("pointerup", up);
  };

  const content = {
    position: "absolute",
    left: 0,
    top: 0,
    width: "100%",
    height: "100%",
    transformOrigin: "0 0",
    transform: `translate(${pan.x}px, ${pan.y}px) scale(${zoom})`,
  };
  const layer = { position: "absolute", inset: 0, width: "100%", height: "100%", userSelect: "none", pointerEvents: "none" };
  const stageBackdrop = backdrop === "colour" ? { backgroundColor: backdropColour || "#81d4fa" } : BACKDROPS[backdrop];
  const button = (label, onClick, extra = {}) => (
    <button type="button" aria-label={label} title={label} onClick={onClick} className="clearbg-editor-button" {...extra}>
      {extra.children || label}
    </button>
  );
  const pressed = (value) => ({ "aria-pressed": tool === value, "data-active": tool === value });

  return (
    <div className="clearbg-editor" data-strokes={strokes.length} data-zoom={zoom.toFixed(3)} data-split={split.toFixed(1)}
         data-pan={`${pan.x.toFixed(1)},${pan.y.toFixed(1)}`}>
      <div className="clearbg-editor-tools" role="toolbar" aria-label="Editor tools">
        {button("Move", () => setTool("move"), pressed("move"))}
        {button("Erase", () => setTool("erase"), pressed("erase"))}
        {button("Restore", () => setTool("restore"), pressed("restore"))}
        <label className="clearbg-editor-label">
          Brush size
          <input type="range" min="2" max="200" value={brush} aria-label="Brush size" onChange={(e) => setBrush(Number(e.target.value))} />
        </label>
        <label className="clearbg-editor-label">
          <input type="checkbox" checked={soft} aria-label="Soft edge" onChange={(e) => setSoft(e.target.checked)} />
          Soft edge
        </label>
        {button("Undo", undo, { disabled: !strokes.length })}
        {button("Redo", redoLast, { disabled: !redo.length })}
        {button("Reset edits", resetEdits, { disabled: !strokes.length && !redo.length })}
      </div>
      <div className="clearbg-editor-tools" role="toolbar" aria-label="View">
        {button("Zoom out", () => zoomCentre(1 / 1.5), { children: "−" })}
        {button("Zoom in", () => zoomCentre(1.5), { children: "+" })}
        {button("Fit", fit)}
        {button("100 %", actualSize, { "aria-label": "Zoom to 100 %" })}
        <span className="clearbg-editor-label" aria-live="polite">Zoom {Math.round(zoom * 100)} %</span>
        <label className="clearbg-editor-label">
          Preview backdrop
          <select value={backdrop} aria-label="Preview backdrop" onChange={(e) => setBackdrop(e.target.value)}>
            <option value="checkerboard">Checkerboard</option>
            <option value="white">White</option>
            <option value="black">Black</option>
            <option value="colour">Colour</option>
          </select>
        </label>
      </div>
      <div
        ref={stageRef}
        className="clearbg-editor-stage"
        data-update-ms={updateMs}
        data-pending={pending || shownUrl !== previewUrl}
        style={{ position: "relative", width: `min(100%, ${(STAGE_MAX_VH / aspect).toFixed(2)}vh)`, margin: "0 auto",
                 aspectRatio: `${Math.max(1, fullWidth)} / ${Math.max(1, fullHeight)}`, overflow: "hidden", touchAction: "none",
                 cursor: tool === "move" ? (zoom > 1 ? "grab" : "default") : "crosshair", ...stageBackdrop }}
        onPointerDown={onPointerDown}
        onPointerMove={onPointerMove}
        onPointerUp={onPointerUp}
        onPointerCancel={onPointerUp}
        tabIndex={0}
        role="application"
        aria-label="Image: with Erase or Restore, arrow keys move the brush and Space puts it down or lifts it; with Move, arrow keys pan"
        onKeyDown={onStageKey}
        onBlur={() => setCursor(null)}
        data-cursor={cursor ? `${cursor.x.toFixed(1)},${cursor.y.toFixed(1)}` : ""}
      >
        <div style={content}>
          <img src={shownUrl} alt="Cut-out" id="result-image" draggable="false" style={{ ...layer, opacity: pending ? 0 : 1 }} />
          <canvas ref={canvasRef} aria-hidden="true" style={{ ...layer, opacity: pending ? 1 : 0 }} />
        </div>
        <div style={{ ...layer, clipPath: `inset(0 ${100 - split}% 0 0)` }}>
          <div style={content}>
            <img src={originalUrl} alt="Original" id="original-image" draggable="false" style={layer} />
          </div>
        </div>
        {cursor && tool !== "move" && (
          <div aria-hidden="true" className="clearbg-editor-cursor"
               style={{ position: "absolute", left: cursor.x - brush / 2, top: cursor.y - brush / 2, width: brush, height: brush,
                        borderRadius: "50%", border: "2px solid white", boxShadow: "0 0 0 1px rgba(0,0,0,.7)", pointerEvents: "none" }} />
        )}
        <div
          role="slider"
          tabIndex={0}
          aria-label="Before and after"
          aria-valuemin={0}
          aria-valuemax={100}
          aria-valuenow={Math.round(split)}
          aria-valuetext={`${Math.round(split)} % original`}
          className="clearbg-editor-split"
          onKeyDown={onSliderKey}
          onPointerDown={onSliderPointer}
          style={{ position: "absolute", top: 0, bottom: 0, left: `${split}%`, width: "24px", marginLeft: "-12px",
                   cursor: "ew-resize", touchAction: "none", display: "flex", justifyContent: "center" }}
        >
          <div style={{ width: "2px", height: "100%", background: "white", boxShadow: "0 0 3px rgba(0,0,0,.6)" }} />
          <div style={{ position: "absolute", top: "50%", width: "24px", height: "24px", marginTop: "-12px", borderRadius: "50%",
                        background: "white", boxShadow: "0 0 4px rgba(0,0,0,.5)" }} />
        </div>
      </div>
    </div>
  );
}
