/*! related-articles widget: renders a "Related articles" box into every element with a
 * data-related-article attribute. Plain JavaScript, no dependencies, no build step.
 *
 *   <div data-related-article="ARTICLE_ID" data-related-k="5"></div>
 *   <script src="https://API_HOST/widget.js" async></script>
 *
 * Every other data-related-* attribute becomes a query parameter of
 * GET /articles/<id>/related (kebab-case -> snake_case: data-related-max-age-days -> max_age_days).
 * Options on the script tag: data-api (API base URL; default: where widget.js came from),
 * data-link-template (e.g. "/news/{id}"; default: each article's url), data-heading,
 * data-timeout (ms, default 3000), data-events="off".
 * The box loads when it nears the viewport. On any failure (HTTP error, timeout, bad JSON,
 * no results) it renders nothing and logs nothing; it never throws into the host page.
 * docs/embed.md describes the attributes, the click attribution parameters and the events.
 */
(function () {
  "use strict";

  var ARTICLE_ATTR = "data-related-article";
  var PREFIX = "data-related-";
  var DEFAULT_TIMEOUT_MS = 3000;
  var ATTRIBUTION = { origin: "related_origin", position: "related_position", model: "related_model" };

  function noop() {}

  if (window.RelatedArticles && typeof window.RelatedArticles.scan === "function") {
    try { window.RelatedArticles.scan(); } catch (e) { noop(); }
    return; // loaded twice: the first copy does the work
  }

  function findScript() {
    if (document.currentScript) return document.currentScript;
    var scripts = document.getElementsByTagName("script");
    for (var i = scripts.length - 1; i >= 0; i--) {
      if (/\/widget\.js(?:[?#]|$)/.test(scripts[i].src || "")) return scripts[i];
    }
    return null;
  }

  function readConfig(script) {
    var attr = function (name) { return script ? script.getAttribute(name) : null; };
    var src = new URL(script && script.src ? script.src : "widget.js", document.baseURI);
    var home = src.origin + src.pathname.replace(/\/[^\/]*$/, "");
    var api = attr("data-api") || home;
    var timeout = parseInt(attr("data-timeout") || "", 10);
    return {
      api: api.replace(/\/+$/, ""),
      stylesheet: home + "/widget.css",
      linkTemplate: attr("data-link-template"),
      heading: attr("data-heading") || "Related articles",
      timeout: timeout > 0 ? timeout : DEFAULT_TIMEOUT_MS,
      events: attr("data-events") !== "off"
    };
  }

  var config;
  try {
    config = readConfig(findScript());
  } catch (e) {
    return; // no usable script URL: stay out of the page
  }
  var seen = typeof WeakSet === "function" ? new WeakSet() : null;
  var boxCount = 0;

  function encodePath(id) {
    return String(id).split("/").map(encodeURIComponent).join("/");
  }

  /* Every data-related-* attribute except the article id, as snake_case query parameters. */
  function queryOf(el) {
    var parts = [];
    for (var i = 0; i < el.attributes.length; i++) {
      var name = el.attributes[i].name.toLowerCase();
      if (name.indexOf(PREFIX) !== 0 || name === ARTICLE_ATTR) continue;
      var key = name.slice(PREFIX.length).replace(/-/g, "_");
      if (key) parts.push(encodeURIComponent(key) + "=" + encodeURIComponent(el.attributes[i].value));
    }
    return parts.length ? "?" + parts.join("&") : "";
  }

  function sendEvents(events) {
    if (!config.events || !events.length) return;
    try {
      var body = JSON.stringify(events.length === 1 ? events[0] : events);
      var url = config.api + "/events";
      // a string body is sent as text/plain: a simple request, no CORS preflight
      if (navigator.sendBeacon && navigator.sendBeacon(url, body)) return;
      if (typeof fetch === "function") {
        fetch(url, { method: "POST", body: body, keepalive: true, mode: "no-cors", credentials: "omit" })
          .catch(noop);
      }
    } catch (e) { noop(); }
  }

  function event(type, origin, item, modelVersion) {
    return { type: type, origin: origin, article: item.id, position: item.position, model_version: modelVersion };
  }

  function linkFor(item, origin, modelVersion) {
    var href = config.linkTemplate ? config.linkTemplate.replace(/\{id\}/g, encodePath(item.id)) : item.url;
    if (typeof href !== "string" || !href) return null;
    var url;
    try {
      url = new URL(href, document.baseURI);
    } catch (e) {
      return null;
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") return null;
    url.searchParams.set(ATTRIBUTION.origin, origin);
    url.searchParams.set(ATTRIBUTION.position, String(item.position));
    if (modelVersion) url.searchParams.set(ATTRIBUTION.model, modelVersion);
    return url.href;
  }

  function formatDate(value) {
    if (typeof value !== "string" || !/^\d{4}-\d{2}-\d{2}/.test(value)) return null;
    var date = new Date(value.length === 10 ? value + "T00:00:00Z" : value);
    if (isNaN(date.getTime())) return null;
    try {
      return new Intl.DateTimeFormat(document.documentElement.lang || undefined,
        { year: "numeric", month: "short", day: "numeric", timeZone: "UTC" }).format(date);
    } catch (e) {
      return value.slice(0, 10);
    }
  }

  function explanationOf(item) {
    var why = item.explanation;
    if (Array.isArray(why)) why = why.filter(function (x) { return typeof x === "string"; }).join(", ");
    return typeof why === "string" && why ? why : null;
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    node.className = className;
    if (text != null) node.textContent = text;
    return node;
  }

  function build(origin, body) {
    if (!body || !Array.isArray(body.related)) return null;
    var modelVersion = typeof body.model_version === "string" ? body.model_version : "";
    var number = ++boxCount;
    var headingId = "related-box-" + number + "-heading";
    var box = element("section", "related-box");
    box.setAttribute("aria-labelledby", headingId);
    var heading = element("h2", "related-box__heading", config.heading);
    heading.id = headingId;
    var list = element("ol", "related-box__list");
    var shown = [];
    body.related.forEach(function (raw) {
      if (!raw || typeof raw.id !== "string" || typeof raw.title !== "string" || !raw.title) return;
      var item = { id: raw.id, url: raw.url, position: shown.length + 1 };
      var href = linkFor(item, origin, modelVersion);
      if (!href) return;
      var li = element("li", "related-box__item");
      var link = element("a", "related-box__link", raw.title);
      link.href = href;
      link.setAttribute("data-position", String(item.position));
      li.appendChild(link);
      var date = formatDate(raw.published_at);
      if (date) {
        var time = element("time", "related-box__meta", date);
        time.setAttribute("datetime", raw.published_at);
        li.appendChild(time);
      }
      var why = explanationOf(raw);
      if (why) {
        var note = element("span", "related-box__why", why);
        note.id = "related-box-" + number + "-why-" + item.position;
        link.setAttribute("aria-describedby", note.id);
        li.appendChild(note);
      }
      list.appendChild(li);
      shown.push(item);
    });
    if (!shown.length) return null;
    box.appendChild(heading);
    box.appendChild(list);
    function onClick(e) {
      if (e.type === "auxclick" && e.button !== 1) return;
      var link = e.target && e.target.closest ? e.target.closest("a[data-position]") : null;
      if (!link || !box.contains(link)) return;
      var item = shown[parseInt(link.getAttribute("data-position"), 10) - 1];
      if (item && modelVersion) sendEvents([event("click", origin, item, modelVersion)]);
    }
    box.addEventListener("click", onClick);
    box.addEventListener("auxclick", onClick);
    return { box: box, impressions: modelVersion ? shown.map(function (item) {
      return event("impression", origin, item, modelVersion);
    }) : [] };
  }

  /* Impressions are sent once, when at least half of the rendered box is on screen. */
  var impressionObserver = null;
  var pendingImpressions = typeof WeakMap === "function" ? new WeakMap() : null;

  function watchImpressions(box, events) {
    if (!events.length) return;
    if (typeof IntersectionObserver !== "function" || !pendingImpressions) { sendEvents(events); return; }
    if (!impressionObserver) {
      impressionObserver = new IntersectionObserver(function (entries) {
        entries.forEach(function (entry) {
          if (!entry.isIntersecting) return;
          impressionObserver.unobserve(entry.target);
          var pending = pendingImpressions.get(entry.target);
          pendingImpressions["delete"](entry.target);
          if (pending) sendEvents(pending);
        });
      }, { threshold: 0.5 });
    }
    pendingImpressions.set(box, events);
    impressionObserver.observe(box);
  }

  function load(el) {
    var origin = el.getAttribute(ARTICLE_ATTR);
    if (!origin || typeof fetch !== "function") return;
    var done = false;
    var controller = typeof AbortController === "function" ? new AbortController() : null;
    var timer = setTimeout(function () {
      done = true;
      if (controller) controller.abort();
    }, config.timeout);
    var url = config.api + "/articles/" + encodePath(origin) + "/related" + queryOf(el);
    fetch(url, { mode: "cors", credentials: "omit", signal: controller ? controller.signal : undefined })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (body) {
        clearTimeout(timer);
        if (done) return;
        done = true;
        var built = build(origin, body);
        if (!built) return;
        return stylesheetLoaded().then(function () {
          el.textContent = "";
          el.appendChild(built.box);
          watchImpressions(built.box, built.impressions);
        });
      })
      .catch(function () { clearTimeout(timer); done = true; });
  }

  var lazyObserver = null;

  /* Find boxes not seen yet (call again after adding boxes to the page). */
  function scan() {
    try {
      var found = document.querySelectorAll("[" + ARTICLE_ATTR + "]");
      for (var i = 0; i < found.length; i++) {
        var el = found[i];
        if (seen) {
          if (seen.has(el)) continue;
          seen.add(el);
        }
        if (typeof IntersectionObserver !== "function") { load(el); continue; }
        if (!lazyObserver) {
          lazyObserver = new IntersectionObserver(function (entries) {
            entries.forEach(function (entry) {
              if (!entry.isIntersecting) return;
              lazyObserver.unobserve(entry.target);
              try { load(entry.target); } catch (e) { noop(); }
            });
          }, { rootMargin: "200px 0px" });
        }
        lazyObserver.observe(el);
      }
    } catch (e) { noop(); }
  }

  /* The stylesheet (from where widget.js came) is added with the first box, never before, so a
     slow server cannot delay the host page's load event; boxes wait for it at most 1.5 s. */
  var stylesheet = null;

  function stylesheetLoaded() {
    if (stylesheet) return stylesheet;
    stylesheet = new Promise(function (resolve) {
      try {
        var links = document.querySelectorAll("link[rel=stylesheet]");
        for (var i = 0; i < links.length; i++) if (links[i].href === config.stylesheet) return resolve();
        var link = document.createElement("link");
        link.rel = "stylesheet";
        link.href = config.stylesheet;
        link.onload = link.onerror = function () { resolve(); };
        setTimeout(resolve, 1500);
        var head = document.head || document.documentElement;
        head.insertBefore(link, head.firstChild); // first, so the host's own rules win
      } catch (e) {
        resolve();
      }
    });
    return stylesheet;
  }

  try {
    window.RelatedArticles = { scan: scan, version: "1" };
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", scan);
    else scan();
  } catch (e) { noop(); }
})();
