-- alert_log.last_error is readable by the workspace's members (policy alert_log_member_read). Since this version
-- bisonsync stores there only the class of a failed send ("slack: HTTP 404", "slack: timeout", ...), never Slack's
-- answer or a transport error's text, which could echo the secret webhook URL. Rows written by older versions
-- are reduced to the same class here. Idempotent.
update public.alert_log
set last_error = 'slack: ' || coalesce(substring(last_error from '^(HTTP [0-9]{3})'), 'failed')
where last_error is not null
  and last_error !~ '^slack: (HTTP [0-9]{3}|timeout|failed|not sent|transport error \([A-Za-z]+\)|invalid URL \([A-Za-z]+\))$'
  and last_error !~ '^no Slack destination \([A-Z_]+ unset\)$';

comment on column public.alert_log.last_error is
  'Class of the last failed send ("slack: HTTP 503", "slack: timeout", ...): never a response body, a transport '
  'error''s text or any part of a webhook URL (readable by members).';
