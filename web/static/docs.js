// Offline API docs: renders /openapi.json with plain DOM code (FastAPI's default /docs loads Swagger UI
// from a CDN, which does not work without internet). Each endpoint can be tried from here.
"use strict";

const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};

function schemaText(schema, spec) {
  if (!schema) return "";
  if (schema.$ref) return schema.$ref.split("/").pop();
  if (schema.enum) return schema.enum.map((v) => JSON.stringify(v)).join(" | ");
  let t = schema.type || "";
  if (schema.format) t += ` (${schema.format})`;
  if (schema.minimum !== undefined || schema.maximum !== undefined) t += ` in [${schema.minimum ?? ""}, ${schema.maximum ?? ""}]`;
  return t;
}

function table(head, rows) {
  const t = el("table", "doc-table");
  const tr = el("tr");
  head.forEach((h) => tr.appendChild(el("th", "", h)));
  t.appendChild(el("thead")).appendChild(tr);
  const body = el("tbody");
  rows.forEach((r) => {
    const row = el("tr");
    r.forEach((c) => row.appendChild(el("td", "", c)));
    body.appendChild(row);
  });
  t.appendChild(body);
  return t;
}

function tryIt(method, path, op) {
  const box = el("div", "try");
  const out = el("pre", "answer");
  const form = el("form");
  const takesImage = op.requestBody && op.requestBody.content && op.requestBody.content["multipart/form-data"];
  let file = null;
  if (takesImage) {
    file = el("input");
    file.type = "file";
    file.accept = "image/*";
    form.appendChild(file);
  }
  const inputs = {}, inPath = {};
  for (const p of op.parameters || []) {
    if (p.in !== "query" && p.in !== "path") continue;
    const label = el("label", "", p.name + " ");
    const i = el("input");
    i.name = p.name;
    i.placeholder = schemaText(p.schema);
    (p.in === "path" ? inPath : inputs)[p.name] = i;
    if (p.in === "path") i.required = true;
    label.appendChild(i);
    form.appendChild(label);
  }
  const go = el("button", "", `${method.toUpperCase()} ${path}`);
  go.type = "submit";
  form.appendChild(go);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const [k, i] of Object.entries(inputs)) if (i.value) q.set(k, i.value);
    const init = { method: method.toUpperCase() };
    if (takesImage) {
      const fd = new FormData();
      if (file.files[0]) fd.append("image", file.files[0]);
      init.body = fd;
    }
    out.textContent = "…";
    try {
      const url = path.replace(/\{(\w+)\}/g, (m, name) => encodeURIComponent(inPath[name] ? inPath[name].value : m));
      const r = await fetch(url + (q.toString() ? "?" + q : ""), init);
      const text = await r.text();
      let shown = text;
      try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (_) { /* not JSON */ }
      out.textContent = `${r.status} ${r.statusText}\n${shown}`;
    } catch (err) {
      out.textContent = String(err);
    }
  });
  box.append(form, out);
  return box;
}

async function main() {
  const root = document.getElementById("endpoints");
  let spec;
  try {
    spec = await (await fetch("/openapi.json")).json();
  } catch (err) {
    root.textContent = "cannot load /openapi.json: " + err;
    return;
  }
  document.getElementById("title").textContent = `${spec.info.title} ${spec.info.version}`;
  document.title = spec.info.title + " API";
  document.getElementById("description").textContent = spec.info.description || "";
  root.replaceChildren();
  for (const [path, ops] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const sec = el("section", "endpoint");
      const h = el("h2");
      h.append(el("span", "method " + method, method.toUpperCase()), el("code", "", " " + path), el("span", "summary", "  " + (op.summary || "")));
      sec.appendChild(h);
      if (op.description) sec.appendChild(el("p", "", op.description));
      const params = (op.parameters || []).map((p) => [p.name, p.in, schemaText(p.schema), p.description || ""]);
      if (params.length) sec.appendChild(table(["parameter", "in", "type", "meaning"], params));
      if (op.requestBody) {
        const rows = [];
        for (const [ctype, c] of Object.entries(op.requestBody.content || {})) {
          const props = c.schema && c.schema.properties;
          if (props) for (const [k, s] of Object.entries(props)) rows.push([ctype, k, schemaText(s), s.description || ""]);
          else rows.push([ctype, "(body)", schemaText(c.schema), "the image itself"]);
        }
        sec.appendChild(table(["request body", "field", "type", "meaning"], rows));
      }
      const rows = Object.entries(op.responses || {}).map(([code, r]) => {
        const ex = r.content && r.content["application/json"] && r.content["application/json"].example;
        return [code, r.description || "", ex ? JSON.stringify(ex) : ""];
      });
      if (rows.length) sec.appendChild(table(["status", "meaning", "example"], rows));
      sec.appendChild(tryIt(method, path, op));
      root.appendChild(sec);
    }
  }
}

document.getElementById("curl").textContent = `curl -F image=@digits.png ${location.origin}/api/read`;
main();
