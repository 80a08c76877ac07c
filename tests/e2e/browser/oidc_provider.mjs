// A real OpenID Connect provider for the console's single sign-on tests, offline:
// node-oidc-provider (npm "oidc-provider") with its development sign-in pages, where any
// login name signs in and becomes the subject (`sub`).
//
//   node oidc_provider.mjs PORT REDIRECT_URI CLIENT_SECRET
//
// Prints "ready" once it listens on http://127.0.0.1:PORT.
import Provider from "oidc-provider";

const [port, redirectUri, secret] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: "exchange-console",
      client_secret: secret,
      redirect_uris: [redirectUri],
      grant_types: ["authorization_code"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_basic",
    },
  ],
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ["browser-tests-only-not-a-secret"] },
  async findAccount(ctx, id) {
    return { accountId: id, async claims() { return { sub: id }; } };
  },
});
provider.proxy = false;
provider.listen(Number(port), "127.0.0.1", () => {
  console.log("ready");
});
