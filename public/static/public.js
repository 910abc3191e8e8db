/* The citizens' report form, enhanced: tap the map (or use the phone's position) to set the point, zoom and drag the map,
   preview and check the photo before sending, get a new human check, and no double submit. The form works
   without this file (the point then comes from the 地点说明 words). Nothing here fetches from another host. */
(function () {
  "use strict";
  var MAX_BYTES = 8 * 1024 * 1024;
  var form = document.getElementById("report-form");
  if (!form) return;
  var lon = document.getElementById("lon"), lat = document.getElementById("lat");
  var pointText = document.getElementById("point-text");

  function showPoint(x, y, text) {
    pointText.textContent = text;
    pointText.className = "pb-point pb-point--set";
    var pin = document.getElementById("map-pin");
    if (pin && x !== null) {
      pin.setAttribute("transform", "translate(" + x + " " + y + ")");
      pin.setAttribute("visibility", "visible");
    }
  }

  // ---- the map: a tap sets the point; ＋/－ zoom around it ----
  var box = document.getElementById("map"), svg = document.getElementById("map-svg");
  var geo = null, view = null, full = null;
  if (box && svg) {
    geo = { west: +box.dataset.west, north: +box.dataset.north, kx: +box.dataset.kx, ky: +box.dataset.ky };
    full = svg.getAttribute("viewBox").split(" ").map(Number);
    view = full.slice();
    var toXY = function (lo, la) { return [(lo - geo.west) * geo.kx, (geo.north - la) * geo.ky]; };
    var setView = function (v) {
      view = v;
      svg.setAttribute("viewBox", v.map(function (n) { return n.toFixed(1); }).join(" "));
      svg.style.touchAction = v[2] < full[2] ? "none" : "";
    };
    var zoom = function (factor) {
      var cx = view[0] + view[2] / 2, cy = view[1] + view[3] / 2;
      if (lon.value && lat.value) { var p = toXY(+lon.value, +lat.value); cx = p[0]; cy = p[1]; }
      var w = Math.min(full[2], Math.max(full[2] / 32, view[2] / factor));
      var h = w * full[3] / full[2];
      setView([cx - w / 2, cy - h / 2, w, h]);
    };
    document.getElementById("zoom-in").hidden = false;
    document.getElementById("zoom-out").hidden = false;
    document.getElementById("zoom-in").addEventListener("click", function () { zoom(2); });
    document.getElementById("zoom-out").addEventListener("click", function () { zoom(0.5); });
    // zoomed in, a drag moves the map (and the page no longer scrolls under the finger); a drag is not a tap
    var drag = null, dragged = false;
    svg.addEventListener("pointerdown", function (ev) {
      if (view[2] >= full[2]) return;
      drag = { x: ev.clientX, y: ev.clientY, view: view.slice(), scale: view[2] / svg.getBoundingClientRect().width };
      dragged = false;
    });
    svg.addEventListener("pointermove", function (ev) {
      if (!drag) return;
      var dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
      if (!dragged && Math.abs(dx) + Math.abs(dy) < 8) return;
      dragged = true;
      setView([drag.view[0] - dx * drag.scale, drag.view[1] - dy * drag.scale, drag.view[2], drag.view[3]]);
    });
    ["pointerup", "pointercancel", "pointerleave"].forEach(function (name) {
      svg.addEventListener(name, function () { drag = null; });
    });
    svg.addEventListener("click", function (ev) {
      if (dragged) { dragged = false; return; }
      var pt = svg.createSVGPoint();
      pt.x = ev.clientX; pt.y = ev.clientY;
      var p = pt.matrixTransform(svg.getScreenCTM().inverse());
      var lo = geo.west + p.x / geo.kx, la = geo.north - p.y / geo.ky;
      lon.value = lo.toFixed(6); lat.value = la.toFixed(6);
      showPoint(p.x, p.y, "已选位置：" + lo.toFixed(5) + ", " + la.toFixed(5) + "（可放大地图后再点准确些）");
    });
    if (lon.value && lat.value) { var p0 = toXY(+lon.value, +lat.value); showPoint(p0[0], p0[1], pointText.textContent); }
  }

  // ---- the phone's position ----
  var locate = document.getElementById("locate");
  if (navigator.geolocation && locate) {
    locate.hidden = false;
    locate.addEventListener("click", function () {
      pointText.textContent = "正在定位…";
      navigator.geolocation.getCurrentPosition(function (pos) {
        var lo = pos.coords.longitude, la = pos.coords.latitude;
        lon.value = lo.toFixed(6); lat.value = la.toFixed(6);
        var xy = geo ? [(lo - geo.west) * geo.kx, (geo.north - la) * geo.ky] : [null, null];
        showPoint(xy[0], xy[1], "已定位：" + lo.toFixed(5) + ", " + la.toFixed(5));
      }, function () {
        pointText.textContent = "无法获取位置：请在地图上点选，或填写地点说明";
        pointText.className = "pb-point";
      }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
    });
  }

  // ---- the photo: preview, and refuse what the server would refuse before sending it ----
  var photo = document.getElementById("photo"), preview = document.getElementById("photo-preview");
  var hint = document.getElementById("photo-hint"), photoMsg = document.getElementById("photo-msg");
  photo.addEventListener("change", function () {
    photoMsg.textContent = "";
    var file = photo.files && photo.files[0];
    if (preview.src) { URL.revokeObjectURL(preview.src); }
    if (!file) { preview.hidden = true; hint.hidden = false; return; }
    if (!/^image\/(jpeg|png|webp)$/.test(file.type)) {
      photoMsg.textContent = "只接受 JPEG、PNG、WebP 图片"; photo.value = ""; preview.hidden = true; hint.hidden = false; return;
    }
    if (file.size > MAX_BYTES) {
      photoMsg.textContent = "照片过大（" + (file.size / 1048576).toFixed(1) + " MB），最大 8 MB";
      photo.value = ""; preview.hidden = true; hint.hidden = false; return;
    }
    preview.src = URL.createObjectURL(file);
    preview.hidden = false; hint.hidden = true;
  });

  // ---- a new human check ----
  var again = document.getElementById("check-new");
  again.hidden = false;
  again.addEventListener("click", function () {
    fetch("/public/check", { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.json(); })
      .then(function (c) {
        document.getElementById("check-image").src = c.image;
        document.getElementById("check-token").value = c.token;
        document.getElementById("check-answer").value = "";
      });
  });

  // ---- one submit ----
  form.addEventListener("submit", function () {
    var button = document.getElementById("submit");
    setTimeout(function () { button.disabled = true; button.textContent = "正在提交…"; }, 0);
  });
  var error = document.getElementById("report-error");
  if (error) { error.scrollIntoView({ block: "center" }); }
})();
