// Clientside helpers: fit a deck.gl spec's initial view to a bounding box and the element's size,
// so the city fills the map on a 1080p console and on a 4K wall alike (deck.gl has no fitBounds prop here).
window.dash_clientside = Object.assign({}, window.dash_clientside, {
  ucc: {
    fitDeck: function (bounds, spec, elementId) {
      if (!bounds || !spec) { return window.dash_clientside.no_update; }
      var el = document.getElementById(elementId);
      var box = el && el.parentElement ? el.parentElement.getBoundingClientRect() : null;
      var w = box && box.width > 0 ? box.width : window.innerWidth;
      var h = box && box.height > 0 ? box.height : window.innerHeight;
      var minx = bounds[0], miny = bounds[1], maxx = bounds[2], maxy = bounds[3];
      function mercY(lat) { var s = Math.sin(lat * Math.PI / 180); return Math.log((1 + s) / (1 - s)) / (4 * Math.PI); }
      var dx = (maxx - minx) / 360, dy = Math.abs(mercY(maxy) - mercY(miny));
      var pad = 0.92;
      var zx = Math.log2(w * pad / (512 * dx)), zy = Math.log2(h * pad / (512 * dy));
      var out = Object.assign({}, spec);
      out.initialViewState = Object.assign({}, spec.initialViewState, {
        longitude: (minx + maxx) / 2, latitude: (miny + maxy) / 2, zoom: Math.min(zx, zy)
      });
      // Labels grow with the screen, like the rem-based CSS (1080 CSS px tall = 1x).
      var scale = Math.max(1, window.innerHeight / 1080);
      out.layers = (spec.layers || []).map(function (layer) {
        if (layer['@@type'] !== 'TextLayer' || typeof layer.getSize !== 'number') { return layer; }
        return Object.assign({}, layer, {getSize: layer.getSize * scale});
      });
      return out;
    }
  }
});
