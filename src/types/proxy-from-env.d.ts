// proxy-from-env ships no types.
declare module 'proxy-from-env' {
  /** The proxy URL the environment (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY, lower-case too) gives for `url`, or '' for none. */
  export function getProxyForUrl(url: string | URL): string;
}
