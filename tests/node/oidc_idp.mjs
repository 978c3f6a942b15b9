// A real OpenID provider (the certified `oidc-provider` package) for agenthost's tests.
// Env: PORT (the issuer is http://127.0.0.1:PORT), REDIRECT_URI (agenthost callbacks, comma-separated),
// USERS_FILE (JSON: login -> claims such as email, email_verified, groups, roles; read at
// every sign-in, so a test changes someone's groups by rewriting it).
// Clients: `agenthost` (authorization code + PKCE, client_secret_basic) and `robot`
// (client credentials, JWT access tokens for the audience `agenthost-api`).
// Sign-in uses the package's development pages: any password; then a consent page.
// Prints `READY <port>` once listening.
import { readFileSync } from "node:fs";
import http from "node:http";
import Provider from "oidc-provider";
import { exportJWK, generateKeyPair } from "jose";

const port = Number(process.env.PORT);
const users = () => JSON.parse(readFileSync(process.env.USERS_FILE, "utf8"));
const { privateKey } = await generateKeyPair("RS256", { extractable: true });
const signing = { ...(await exportJWK(privateKey)), kid: "idp-1", use: "sig", alg: "RS256" };

const provider = new Provider(`http://127.0.0.1:${port}`, {
  jwks: { keys: [signing] },
  cookies: { keys: ["agenthost-test-idp-cookie-key"] },
  clients: [
    {
      client_id: "agenthost",
      client_secret: "agenthost-secret",
      redirect_uris: process.env.REDIRECT_URI.split(","),
      grant_types: ["authorization_code"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_basic",
    },
    {
      client_id: "robot",
      client_secret: "robot-secret",
      grant_types: ["client_credentials"],
      redirect_uris: [],
      response_types: [],
      scope: "agents.invoke",
    },
  ],
  pkce: { required: () => true },
  scopes: ["openid", "offline_access", "agents.invoke"],
  claims: {
    openid: ["sub"],
    email: ["email", "email_verified"],
    profile: ["name"],
    groups: ["groups"],
    roles: ["roles"],
  },
  conformIdTokenClaims: false, // the ID token carries the claims its scopes grant
  findAccount: async (ctx, id) => {
    const known = users()[id];
    return known ? { accountId: id, claims: async () => ({ sub: id, ...users()[id] }) } : undefined;
  },
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => "urn:agenthost:api",
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: "agents.invoke",
        audience: "agenthost-api",
        accessTokenFormat: "jwt",
        jwt: { sign: { alg: "RS256" } },
      }),
    },
  },
});
provider.on("server_error", (ctx, error) => console.error("server_error", error));

http.createServer(provider.callback()).listen(port, "127.0.0.1", () => {
  console.log(`READY ${port}`);
});
