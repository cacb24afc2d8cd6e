// CONTRACT §7 "Keys" with the real socket.io-client v4: tokens signed by an
// identity provider's RSA and EC keys (made here with node:crypto), published
// as a JWKS by a local HTTP server that the test rotates.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { createHmac, generateKeyPairSync, sign } from "node:crypto";
import { startServer, next, ask } from "./helpers.js";

const ISSUER = "https://tenant.idp.test/";
const AUDIENCE = "roomcast-compat";

function makeKey(kind, kid) {
  const { privateKey, publicKey } =
    kind === "RS256"
      ? generateKeyPairSync("rsa", { modulusLength: 2048 })
      : generateKeyPairSync("ec", { namedCurve: "P-256" });
  const jwk = { ...publicKey.export({ format: "jwk" }), kid, use: "sig", alg: kind };
  const pem = publicKey.export({ format: "pem", type: "spki" });
  return { kind, kid, privateKey, jwk, pem };
}

const b64 = (value) => Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");

function signWith(key, claims, kid = key.kid) {
  const head = `${b64({ alg: key.kind, typ: "JWT", kid })}.${b64(claims)}`;
  const options = key.kind === "ES256" ? { key: key.privateKey, dsaEncoding: "ieee-p1363" } : key.privateKey;
  return `${head}.${sign("sha256", Buffer.from(head), options).toString("base64url")}`;
}

const claims = (sub, extra = {}) => ({
  sub,
  iss: ISSUER,
  aud: AUDIENCE,
  exp: Math.floor(Date.now() / 1000) + 600,
  ...extra,
});

const rsa1 = makeKey("RS256", "rsa-1");
const ec1 = makeKey("ES256", "ec-1");
const rsa2 = makeKey("RS256", "rsa-2");
let published = [rsa1.jwk, ec1.jwk];
let jwks;
let server;

before(async () => {
  jwks = createServer((req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ keys: published }));
  });
  await new Promise((resolve) => jwks.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${jwks.address().port}/.well-known/jwks.json`;
  server = await startServer(["--jwks-url", url, "--jwt-issuer", ISSUER, "--jwt-audience", AUDIENCE]);
});
after(async () => {
  await server.stop();
  jwks.closeAllConnections();
  await new Promise((resolve) => jwks.close(resolve));
});

for (const transports of [["websocket"], ["polling"]]) {
  test(`an RS256 token from the JWKS connects over ${transports[0]}`, async () => {
    const socket = await server.connect({ auth: { token: signWith(rsa1, claims("alice")) }, transports });
    const note = next(socket, "notification");
    await server.publish("emit", { room: "user:alice", event: "notification", data: "hi alice" });
    assert.equal(await note, "hi alice");
  });
}

test("an ES256 token authenticates after connecting", async () => {
  const socket = await server.connect({ transports: ["websocket"] });
  const ack = await ask(socket, "authenticate", signWith(ec1, claims("bob")));
  assert.deepEqual(ack, { ok: true, userId: "bob" });
});

test("forged and unfit tokens get connect_error Authentication failed", async () => {
  const hs256WithPem = (() => {
    const head = `${b64({ alg: "HS256", typ: "JWT", kid: "rsa-1" })}.${b64(claims("u"))}`;
    return `${head}.${createHmac("sha256", rsa1.pem).update(head).digest("base64url")}`;
  })();
  const cases = {
    "alg none": `${b64({ alg: "none", typ: "JWT" })}.${b64(claims("u"))}.`,
    "HS256 with the RSA public key as secret": hs256WithPem,
    "wrong audience": signWith(rsa1, claims("u", { aud: "someone-else" })),
    "wrong issuer": signWith(rsa1, claims("u", { iss: "https://evil.test/" })),
    "nbf in the future": signWith(rsa1, claims("u", { nbf: Math.floor(Date.now() / 1000) + 60 })),
    expired: signWith(rsa1, claims("u", { exp: Math.floor(Date.now() / 1000) - 60 })),
  };
  for (const [name, token] of Object.entries(cases)) {
    const err = await server.connectError({ auth: { token }, transports: ["websocket"] });
    assert.equal(err.message, "Authentication failed", name);
  }
});

test("a key rotated into the JWKS is accepted without a restart", async () => {
  published = [rsa2.jwk, ec1.jwk];
  const socket = await server.connect({ auth: { token: signWith(rsa2, claims("carol")) }, transports: ["websocket"] });
  const note = next(socket, "notification");
  await server.publish("emit", { room: "user:carol", event: "notification", data: "rotated" });
  assert.equal(await note, "rotated");
});
