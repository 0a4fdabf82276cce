"""The console's two languages: zh-CN and en, chosen from the browser's Accept-Language unless
the user picked one with the switch (kept in the session)."""

from __future__ import annotations

LANGUAGES = ("zh-CN", "en")
DEFAULT = "zh-CN"

MESSAGES: dict[str, tuple[str, str]] = {
    # key: (zh-CN, en)
    "app": ("客户控制台", "Kehu console"),
    "skip": ("跳到主要内容", "Skip to main content"),
    "nav": ("主导航", "Main navigation"),
    "dashboard": ("管理看板", "Dashboard"),
    "workspace": ("我的工作台", "My workspace"),
    "customers": ("客户", "Customers"),
    "sign_in": ("登录", "Sign in"),
    "sign_out": ("退出", "Sign out"),
    "signed_in_as": ("当前用户", "Signed in as"),
    "language": ("语言", "Language"),
    "sign_in_title": ("登录客户控制台", "Sign in to the Kehu console"),
    "dev_users": ("开发用户", "Dev users"),
    "dev_users_help": (
        "开发环境的身份提供者：以下用户的令牌由本地签发。",
        "The dev identity provider: these users' tokens are signed locally.",
    ),
    "sign_in_as": ("登录为", "Sign in as"),
    "sign_in_with": ("通过以下方式登录", "Sign in with"),
    "no_sign_in": ("没有配置任何登录方式。", "No way to sign in is configured."),
    "role.admin": ("管理员", "Administrator"),
    "role.manager": ("客服经理", "Customer-service manager"),
    "role.agent": ("客服专员", "Service agent"),
    "role.analyst": ("分析师（数据脱敏）", "Analyst (masked data)"),
    "role.integration": ("集成系统", "Integration"),
    "session_expired": ("会话已过期，请重新登录。", "Your session has expired: sign in again."),
    "csrf_failed": (
        "表单已过期或来源不可信，请重试。",
        "The form expired or did not come from this console: try again.",
    ),
    "not_available": ("暂不可用", "Not available"),
    "not_available_yet": ("尚未提供", "Not available yet"),
    "not_a_member": ("尚未加入会员", "Not a loyalty member"),
    "forbidden": ("您的角色无权查看此内容", "Your role may not see this"),
    "error": ("出错了", "Something went wrong"),
    "empty": ("暂无数据", "Nothing yet"),
    "charts_missing": (
        "图表库未安装（运行 make install），仅显示表格。",
        "The chart library is not installed (run make install): tables only.",
    ),
    # dashboard
    "tiers": ("客户等级分布（ABC）", "Tier distribution (ABC)"),
    "tier": ("等级", "Tier"),
    "customers_count": ("客户数", "Customers"),
    "customers_pct": ("客户占比 %", "Customers %"),
    "contribution": ("利润贡献", "Contribution"),
    "contribution_share": ("贡献占比 %", "Share of contribution %"),
    "pareto": ("利润贡献帕累托曲线", "Contribution Pareto curve"),
    "pareto_x": ("客户累计占比 %", "Cumulative % of customers"),
    "pareto_y": ("贡献累计占比 %", "Cumulative % of contribution"),
    "satisfaction": ("各维度满意度与目标", "Satisfaction by dimension vs target"),
    "dimension": ("维度", "Dimension"),
    "latest": ("最近一期 %", "Latest period %"),
    "target": ("目标", "Target"),
    "gap": ("差距", "Gap"),
    "period": ("周期", "Period"),
    "nps": ("NPS 趋势", "NPS trend"),
    "nps_score": ("NPS", "NPS"),
    "complaints_by_type": ("投诉按类型：SLA 达成与时效", "Complaints by type: SLA and times"),
    "category": ("类型", "Type"),
    "received": ("受理", "Received"),
    "open": ("未结", "Open"),
    "resolved": ("已解决", "Resolved"),
    "sla_compliance": ("SLA 达成率 %", "SLA compliance %"),
    "first_response": ("首次响应 p50 / p90", "First response p50 / p90"),
    "resolution_time": ("解决时长 p50 / p90", "Resolution p50 / p90"),
    "churn": ("流失风险客户", "Churn risk"),
    "customer": ("客户", "Customer"),
    "score": ("分值", "Score"),
    "reasons": ("原因", "Reasons"),
    "owner": ("负责人", "Owner"),
    "last_purchase": ("最近购买", "Last purchase"),
    "staff": ("员工绩效", "Staff performance"),
    "report": ("管理报告", "Management report"),
    "report_later": ("管理报告在图表之后加载。", "The management report loads after the charts."),
    "report_open": ("打开管理报告", "Open the management report"),
    "report_failed": ("管理报告未能加载", "The management report could not be loaded"),
    "report_retry": ("重试", "Try again"),
    "back_to_dashboard": ("返回管理看板", "Back to the dashboard"),
    "upstream_timed_out": ("分析服务响应超时", "analytics did not answer in time"),
    "upstream_unreachable": ("无法连接分析服务", "analytics could not be reached"),
    "assignee": ("经办人", "Assignee"),
    "unassigned": ("（未分配）", "(unassigned)"),
    "followups_completed": ("完成跟进", "Follow-ups done"),
    "on_time_pct": ("按时完成 %", "On time %"),
    "overdue_now": ("当前逾期", "Overdue now"),
    "revisit_compliance": ("回访达标率 %（客户数）", "Revisit compliance % (customers)"),
    "interactions_logged": ("沟通记录", "Interactions"),
    "complaints_handled": ("处理投诉", "Complaints handled"),
    "resolution_rating": ("解决评分（条数）", "Resolution rating (count)"),
    "customer_csat": ("客户满意 %（答卷）", "Customer CSAT % (answers)"),
    "period.week": ("本周", "This week"),
    "period.month": ("本月", "This month"),
    "tier_movements": ("等级变动", "Tier movements"),
    "tiers_up": ("升级", "Up"),
    "tiers_down": ("降级", "Down"),
    "tiers_new": ("首次定级", "Tiered for the first time"),
    "biggest_movers": ("变动最大的客户", "Biggest movers"),
    "tier_move": ("等级变化", "Move"),
    "answers": ("答卷数", "Answers"),
    "satisfied_pct": ("满意 %", "Satisfied %"),
    "trend": ("较上期", "Against the previous period"),
    "previous": ("上期", "previous"),
    "first_response_p50": ("首次响应 p50", "First response p50"),
    "resolution_p50": ("解决时长 p50", "Resolution p50"),
    "churn_changes": ("流失风险变化", "Churn-risk changes"),
    "new_high_risk": ("新增高风险客户", "Newly at high risk"),
    "left_high_risk": ("脱离高风险", "No longer at high risk"),
    "new_high_risk_by_owner": ("新增高风险客户（按负责人）", "Newly at high risk by owner"),
    "dim.product_quality": ("产品质量", "Product quality"),
    "dim.service": ("服务", "Service"),
    "dim.price": ("价格", "Price"),
    "dim.delivery": ("交付", "Delivery"),
    "dim.after_sales": ("售后", "After-sales"),
    "dim.overall": ("总体", "Overall"),
    # workspace
    "agenda": ("我的日程", "My agenda"),
    "overdue": ("已逾期", "Overdue"),
    "due_today": ("今天到期", "Due today"),
    "upcoming": ("即将到期", "Upcoming"),
    "due": ("到期", "Due"),
    "kind": ("类别", "Kind"),
    "note": ("备注", "Note"),
    "complete": ("完成", "Complete"),
    "completed": ("跟进已完成。", "Follow-up completed."),
    "my_cases": ("我的投诉（按最近期限）", "My complaints by nearest deadline"),
    "status": ("状态", "Status"),
    "severity": ("严重程度", "Severity"),
    "sla": ("SLA", "SLA"),
    "remaining": ("剩余时间", "Time left"),
    "subject": ("主题", "Subject"),
    "move_to": ("转到", "Move to"),
    "move": ("更新状态", "Move"),
    "moved": ("投诉状态已更新。", "Complaint moved."),
    "resolution": ("解决方案", "Resolution"),
    "revisit_outcome": ("回访结果", "Revisit outcome"),
    "search": ("搜索客户", "Search customers"),
    "search_label": ("客户编号、名称、电话或邮箱", "Number, name, phone or e-mail"),
    "search_button": ("搜索", "Search"),
    # customer page
    "profile": ("客户档案", "Profile"),
    "insights": ("客户洞察", "Insights"),
    "timeline": ("时间线", "Timeline"),
    "complaints": ("投诉", "Complaints"),
    "loyalty": ("积分余额", "Loyalty balance"),
    "level": ("会员等级", "Level"),
    "points_available": ("可用积分", "Points available"),
    "points_pending": ("待生效积分", "Points pending (return window)"),
    "points_debt": ("欠积分", "Points owed"),
    "points_earned_in_window": ("等级周期内所得积分", "Earned in the level window"),
    "number": ("编号", "Number"),
    "name": ("名称", "Name"),
    "email": ("邮箱", "E-mail"),
    "phone": ("电话", "Phone"),
    "industry": ("行业", "Industry"),
    "region": ("地区", "Region"),
    "tags": ("标签", "Tags"),
    "lifecycle": ("生命周期", "Lifecycle"),
    "churn_risk": ("流失风险", "Churn risk"),
    "revenue": ("收入", "Revenue"),
    "rfm": ("RFM 细分", "RFM segment"),
    "when": ("时间", "When"),
    "type": ("类型", "Type"),
    "details": ("详情", "Details"),
    "log_interaction": ("记录一次沟通", "Log an interaction"),
    "channel": ("渠道", "Channel"),
    "direction": ("方向", "Direction"),
    "inbound": ("呼入", "Inbound"),
    "outbound": ("呼出", "Outbound"),
    "summary": ("摘要", "Summary"),
    "outcome": ("结果", "Outcome"),
    "save": ("保存", "Save"),
    "logged": ("沟通已记录。", "Interaction logged."),
    "action_failed": ("操作未成功", "The action did not succeed"),
    "not_found": ("未找到", "Not found"),
}


def negotiate(accept_language: str | None) -> str:
    """The best of zh-CN and en for an Accept-Language header (q-values honoured)."""
    choices: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        tag = tag.strip().lower()
        if tag.startswith("zh"):
            choices.append((quality, -position, "zh-CN"))
        elif tag.startswith("en"):
            choices.append((quality, -position, "en"))
    choices = [c for c in choices if c[0] > 0]
    return max(choices)[2] if choices else DEFAULT


def translate(lang: str, key: str) -> str:
    pair = MESSAGES.get(key)
    if pair is None:
        return key.split(".", 1)[-1].replace("_", " ")
    return pair[0] if lang == "zh-CN" else pair[1]
