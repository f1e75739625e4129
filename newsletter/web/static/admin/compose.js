/* The composer: language tabs, live previews in both frames, the audience size as the form changes.
   Everything works without it (all tabs shown, the Preview button fills the desktop frame). */
(function () {
  "use strict";
  var form = document.getElementById("composer");
  if (!form) { return; }

  // -- tabs
  var tabs = Array.prototype.slice.call(document.querySelectorAll("[data-tab]"));
  function show(lang) {
    document.querySelectorAll(".text-tab").forEach(function (panel) {
      panel.hidden = panel.getAttribute("data-language") !== lang;
    });
    tabs.forEach(function (tab) {
      tab.setAttribute("aria-selected", tab.getAttribute("data-tab") === lang ? "true" : "false");
    });
  }
  tabs.forEach(function (tab) {
    tab.addEventListener("click", function (event) {
      event.preventDefault();
      show(tab.getAttribute("data-tab"));
      preview(tab.getAttribute("data-tab"));
    });
  });
  var errored = document.querySelector(".text-tab .field-error");
  var source = form.querySelector("select[name=source]");
  var first = errored ? errored.closest(".text-tab").getAttribute("data-language") : (source ? source.value : null);
  if (tabs.length) { show(first || tabs[0].getAttribute("data-tab")); }

  // -- trigger fields
  var trigger = form.querySelector("select[name=trigger]");
  function triggerFields() {
    var atEvent = trigger.value !== "at";
    form.querySelectorAll(".when-at").forEach(function (el) { el.hidden = atEvent; });
    form.querySelectorAll(".when-event").forEach(function (el) { el.hidden = !atEvent; });
  }
  if (trigger) { trigger.addEventListener("change", triggerFields); triggerFields(); }

  // -- previews: the form posted into the phone and the desktop frame of a language
  function preview(lang) {
    if (form.querySelector("fieldset[disabled]")) { return; }
    var action = form.getAttribute("action"), target = form.getAttribute("target");
    var hidden = document.createElement("input");
    hidden.type = "hidden"; hidden.name = "preview_lang"; hidden.value = lang;
    form.appendChild(hidden);
    form.setAttribute("action", "/admin/compose/preview");
    ["phone-", "desktop-"].forEach(function (prefix) {
      form.setAttribute("target", prefix + lang);
      form.submit();
    });
    form.removeChild(hidden);
    form.setAttribute("action", action);
    if (target) { form.setAttribute("target", target); } else { form.removeAttribute("target"); }
  }
  document.querySelectorAll(".preview-button").forEach(function (button) {
    button.addEventListener("click", function (event) {
      event.preventDefault();
      preview(button.getAttribute("data-language"));
    });
  });
  var timer = null;
  form.querySelectorAll(".text-tab input, .text-tab textarea").forEach(function (el) {
    el.addEventListener("input", function () {
      var lang = el.closest(".text-tab").getAttribute("data-language");
      clearTimeout(timer);
      timer = setTimeout(function () { preview(lang); }, 700);
    });
  });

  // -- audience size per language, as lists and filters change
  var counts = document.getElementById("audience-counts");
  function audience() {
    var params = new URLSearchParams();
    ["lists", "audience_languages", "regions", "languages"].forEach(function (name) {
      form.querySelectorAll("[name=" + name + "]").forEach(function (el) {
        if (el.tagName === "SELECT") {
          Array.prototype.forEach.call(el.selectedOptions, function (o) { params.append(name, o.value); });
        } else if (el.checked) { params.append(name, el.value); }
      });
    });
    params.append("countries", form.querySelector("[name=countries]").value);
    fetch("/admin/compose/audience?" + params.toString(), { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        counts.textContent = "";
        if (data.error) { counts.textContent = data.error; return; }
        Object.keys(data.counts).forEach(function (lang, i) {
          var span = document.createElement("span");
          span.className = "count"; span.setAttribute("data-language", lang);
          span.textContent = (i ? " · " : "") + lang + " " + data.counts[lang];
          counts.appendChild(span);
        });
      });
  }
  if (counts) {
    form.querySelectorAll("#audience input, #audience select, [name=languages]").forEach(function (el) {
      el.addEventListener("change", audience);
    });
  }
})();
