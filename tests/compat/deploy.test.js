// No Docker engine runs here, so the deployment files are checked by
// construction: everything they name exists in the project and agrees.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import yaml from "js-yaml";
import { BIN } from "./helpers.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const deploy = path.join(root, "deploy");
const compose = yaml.load(readFileSync(path.join(deploy, "docker-compose.yml"), "utf8"));
const help = execFileSync(BIN, ["--help"], { encoding: "utf8" });

test("every compose service is complete and every ROOMCAST_ variable is a real option", () => {
  const roomcast = Object.entries(compose.services).filter(([, s]) => s.build);
  assert.deepEqual(roomcast.map(([name]) => name), ["roomcast-1", "roomcast-2", "roomcast-3"]);
  for (const [name, service] of roomcast) {
    const context = path.resolve(deploy, service.build.context);
    assert.ok(existsSync(path.join(context, service.build.dockerfile)), `${name}: Dockerfile exists`);
    assert.equal(service.environment.ROOMCAST_NODE_ID, name);
    for (const key of Object.keys(service.environment).filter((k) => k.startsWith("ROOMCAST_"))) {
      assert.ok(help.includes(`[env: ${key}=`), `${key} is an option of roomcast`);
    }
    const redis = new URL(service.environment.ROOMCAST_REDIS_URL);
    assert.ok(compose.services[redis.hostname], "the Redis URL names the compose Redis");
    assert.ok(service.depends_on.redis, `${name} waits for Redis`);
  }
  for (const [name, service] of Object.entries(compose.services)) {
    assert.ok(service.image, `${name} has an image`);
    for (const volume of service.volumes ?? []) {
      const source = volume.split(":")[0];
      if (source.startsWith(".")) assert.ok(existsSync(path.resolve(deploy, source)), `${name}: ${source} exists`);
    }
  }
});

test("the load balancer and Prometheus point at the compose nodes on the port they listen on", () => {
  const nodes = Object.keys(compose.services).filter((n) => n.startsWith("roomcast-"));
  const port = compose.services["roomcast-1"].environment.ROOMCAST_LISTEN.split(":").pop();
  const nginx = readFileSync(path.join(deploy, "nginx.conf"), "utf8");
  const upstreams = [...nginx.matchAll(/^\s*server\s+([\w.-]+):(\d+)/gm)].map((m) => `${m[1]}:${m[2]}`);
  assert.deepEqual(upstreams, nodes.map((n) => `${n}:${port}`));
  assert.match(nginx, /hash \$remote_addr consistent/, "sticky routing for long-polling");
  assert.match(nginx, /proxy_set_header Upgrade \$http_upgrade/, "WebSocket upgrade");
  const roundRobin = readFileSync(path.join(deploy, "nginx-round-robin.conf"), "utf8");
  const rrUpstreams = [...roundRobin.matchAll(/^\s*server\s+([\w.-]+):(\d+)/gm)].map((m) => `${m[1]}:${m[2]}`);
  assert.deepEqual(rrUpstreams, nodes.map((n) => `${n}:${port}`));
  assert.doesNotMatch(roundRobin, /^\s*(hash|ip_hash|sticky)\b/m, "no stickiness");
  assert.match(roundRobin, /proxy_set_header Upgrade \$http_upgrade/, "WebSocket upgrade");
  for (const n of nodes) {
    assert.equal(compose.services[n].environment.ROOMCAST_ADVERTISE_URL, `http://${n}:${port}`, `${n} advertises itself`);
  }
  const prometheus = yaml.load(readFileSync(path.join(root, "grafana/prometheus.yml"), "utf8"));
  assert.deepEqual(prometheus.scrape_configs[0].static_configs[0].targets, nodes.map((n) => `${n}:${port}`));
  assert.equal(prometheus.scrape_configs[0].metrics_path, "/metrics");
});

test("Grafana provisioning matches the dashboard and the mounts", () => {
  const datasource = yaml.load(readFileSync(path.join(root, "grafana/provisioning/datasources/prometheus.yml"), "utf8"));
  const provider = yaml.load(readFileSync(path.join(root, "grafana/provisioning/dashboards/roomcast.yml"), "utf8"));
  const dashboard = JSON.parse(readFileSync(path.join(root, "grafana/dashboards/roomcast.json"), "utf8"));
  const uid = datasource.datasources[0].uid;
  for (const panel of dashboard.panels) assert.equal(panel.datasource.uid, uid, panel.title);
  assert.equal(new URL(datasource.datasources[0].url).hostname, "prometheus");
  assert.ok(compose.services.prometheus);
  const mounts = compose.services.grafana.volumes.map((v) => v.split(":")[1]);
  assert.ok(mounts.includes(provider.providers[0].options.path), "dashboards are mounted where the provider reads");
});

test("the Dockerfile copies what exists, runs as non-root and checks /healthz", () => {
  const dockerfile = readFileSync(path.join(root, "Dockerfile"), "utf8");
  for (const [, sources] of dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) {
    for (const source of sources.split(/\s+/)) assert.ok(existsSync(path.join(root, source)), `COPY ${source}`);
  }
  const user = /^USER (\S+)$/m.exec(dockerfile)?.[1];
  assert.ok(user && user !== "root" && user !== "0", "non-root user");
  assert.match(dockerfile, /HEALTHCHECK[\s\S]*\/healthz/);
  assert.match(dockerfile, /EXPOSE 3000/);
  assert.match(dockerfile, /ROOMCAST_LISTEN=0\.0\.0\.0:3000/);
  assert.equal((dockerfile.match(/^FROM /gm) ?? []).length, 2, "multi-stage");
});
