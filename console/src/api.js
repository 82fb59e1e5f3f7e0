// The console API: every call carries the login (a local token, or Cognito's ID token in AWS).
const KEY = "siyu.console.token";

export const session = {
  get: () => sessionStorage.getItem(KEY),
  set: (token) => sessionStorage.setItem(KEY, token),
  clear: () => sessionStorage.removeItem(KEY),
};

// What a person reads when a call fails: the status in words, then the server's reason.
const WORDS = {
  400: "请求有误",
  401: "请先登录",
  403: "没有权限",
  404: "未找到",
  409: "冲突",
  503: "服务暂时不可用，请稍后重试",
};

export class ApiError extends Error {
  constructor(status, data) {
    super(`${WORDS[status] || `出错了（${status}）`}${data && data.reason ? `：${data.reason}` : ""}`);
    this.status = status;
    this.data = data || {};
  }
}

// A Cognito ID token (a JWT: three dot-separated parts) goes to API Gateway's authorizer in
// Authorization; the local stage's login token in its own header.
function login() {
  const token = session.get() || "";
  return /^[\w-]+\.[\w-]+\.[\w-]+$/.test(token) ? { Authorization: token } : { "X-Siyu-Console-Token": token };
}

export async function api(path, { method = "GET", body, headers = {} } = {}) {
  const response = await fetch(`console/api/${path}`, {
    method,
    headers: {
      ...login(),
      ...(body === undefined ? {} : { "Content-Type": "application/json" }),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try {
    data = await response.json();
  } catch (_) {
    data = null;
  }
  if (!response.ok) {
    throw new ApiError(response.status, data);
  }
  return { ...data, httpStatus: response.status };
}
