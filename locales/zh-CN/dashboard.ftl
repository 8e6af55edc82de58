# herald 管理后台的文字（简体中文）：编辑在 /admin 下看到的内容。

dashboard = 管理后台
dashboard-brand = 管理后台
dashboard-log-out = 退出登录
dashboard-back = 返回管理后台

login-title = 登录
login-token-label = 管理令牌
login-button = 登录
login-help = 令牌即 web.admin_token 的值，或 web.admin_token_file 所指文件（默认为 herald.admin-token）的内容；herald serve 启动时会显示该文件的路径。
login-wrong-token = 管理令牌不正确。
login-throttled = 此地址输错令牌的次数过多，请在 { $seconds } 秒后再试。

home-subscribers = 订阅者
home-subscribers-total = 总计
home-schedule = 定时发送
home-next-run = 下次自动发送：
home-next-issue = 届时将发送：
home-nothing-due = 届时没有需要发送的内容：在那之前，没有比上一期更新的未发送期号。
home-schedule-off = 定时发送已关闭（schedule.cron），只有手动发送时才会发出。
home-issues = 期号
home-no-issues = 期号文件夹中还没有任何文件。
refresh = 刷新

subscriber-status = { $status ->
    [pending] 待确认
    [active] 已订阅
    [unsubscribed] 已退订
    [bounced] 已退信
    [complained] 已投诉
   *[other] { $status }
}
issue-status = { $status ->
    [draft] 草稿
    [scheduled] 已排期
    [queued] 排队中
    [sending] 发送中
    [retry] 待重试
    [sent] 已发送
    [failed] 失败
    [skipped] 已跳过
    [cancelled] 已取消
   *[other] { $status }
}

issue-all-issues = 全部期号
issue-started = 开始于 { $at }。
issue-started-finished = 开始于 { $at }，完成于 { $finished }。
issue-test-label = 发送测试邮件至
issue-test-placeholder = you@example.org
issue-test-button = 发送测试邮件
issue-send-button = 立即发送…
issue-retry-button = 重试失败的投递
issue-preview = 预览
issue-preview-title = 订阅者收到的邮件效果
issue-file-gone = 期号文件夹中已找不到这一期的文件。

send-title = 发送《{ $title }》？
send-back = 返回本期
send-heading = 确定发送《{ $title }》吗？
send-audience = 本期将发给所有已订阅的读者：目前共 { $count } 位。
send-again = 本期之前已发送过（{ $status }）：只有尚未收到的订阅者会收到，不会有人重复收到。
send-confirm = 确定发送给 { $count } 位订阅者
send-button = 立即发送

notice-test-sent = 邮件服务器已接收测试邮件。
notice-sending = 本期正在发送。
notice-requeued = 可能成功的失败投递已重新排队。
notice-nothing-to-retry = 没有需要重试的失败投递。

dashboard-error-login = 请先登录
dashboard-error-forbidden = 请求被拒绝
dashboard-error-forbidden-body = 表单已过期，或并非来自本管理后台，因此未执行任何操作。请返回并刷新页面后重试。
dashboard-error-not-found = 页面不存在
dashboard-error-not-found-body = 此地址没有任何内容。
dashboard-error-bad-request = 操作未能完成
dashboard-error-internal = 出错了
dashboard-error-internal-body = 请求未能完成，原因已记录在 herald 的日志中。
dashboard-error-tick = 请勾选确认框后再发送。
dashboard-error-relay = 邮件服务器未接收测试邮件：{ $reply }
dashboard-error-address = 邮箱地址无效，请检查后重试。
dashboard-error-draft = { $slug } 是草稿（front matter 中有 draft: true），删除这一行后才能发送。
