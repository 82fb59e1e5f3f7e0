// Numbers as ops read them. KPI values arrive in their unit (percent, yuan, NPS points).
// The server's own text of a KPI (the digest's formatting), so page and digest cannot differ.
export function kpiText(row) {
  return !row.text || row.text === "-" ? "—" : row.text;
}

export function changeText(row) {
  if (row.change === null || row.change === undefined) return "环比 —";
  const word = row.unit === "%" ? "pt" : row.unit;
  const sign = row.change > 0 ? "+" : "";
  return `环比 ${sign}${row.change.toFixed(1)}${word}`;
}

export function yuan(fen) {
  return `${(fen / 100).toFixed(2)}元`;
}

export function pct(x) {
  return x === null || x === undefined ? "—" : `${(100 * x).toFixed(1)}%`;
}

const ZONE = "Asia/Shanghai";

export function when(iso, zone = ZONE) {
  if (!iso) return "—";
  const d = new Date(iso);
  const parts = new Intl.DateTimeFormat("zh-CN", {
    timeZone: zone,
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    hour12: false,
  }).formatToParts(d);
  const get = (t) => (parts.find((p) => p.type === t) || {}).value;
  return `${get("year")}-${get("month")}-${get("day")} ${get("hour")}:${get("minute")}`;
}

export const STATUS = {
  open: "待响应",
  responded: "已响应",
  resolved: "已处理",
  closed: "已回访关闭",
  issued: "未使用",
  redeemed: "已核销",
  expired: "已过期",
  pending: "待发送",
  sending: "发送中",
  sent: "已发送",
  dropped: "未发送",
  failed: "发送失败",
  unknown: "结果未知",
  deferred: "延后",
  retrying: "重试中",
  treated: "已发送召回",
  holdout: "对照组",
  skipped: "跳过",
  replied: "已回复",
};

// The duty or cause behind a coupon, a message or a points entry.
export const CAUSE = {
  welcome: "新人礼",
  recall: "召回",
  challenge: "复购挑战",
  order: "订单",
  refund: "退款",
  redeem: "兑换",
  checkin: "签到",
  referral: "邀请",
  tiers: "等级",
  tier: "等级",
  precision: "精准推送",
  birthday: "生日",
  koc: "品牌体验官",
  reviews: "差评",
  expire: "过期",
  erase: "删除",
  lottery: "抽奖",
  digest: "周报",
  alerts: "预警",
};

export const CHANNEL = {
  passive_reply: "被动回复",
  template: "模板消息",
  subscribe: "订阅消息",
  custom: "客服消息",
  miniprogram_subscribe: "小程序订阅",
  wecom_customer: "企微1对1",
  robot: "群机器人",
};

export const label = (map, key) => map[key] || key || "—";

export const STEP = { late: "超时未响应", escalated: "升级", follow_up: "回访" };
