-- Denied requests on tenant buckets over the last 7 days: a principal reaching for another tenant's
-- data, a session outside its scope-down policy, or a broken policy after a change.
SELECT eventtime,
       eventname,
       COALESCE(useridentity.sessioncontext.sessionissuer.arn, useridentity.arn) AS role_arn,
       useridentity.arn AS session_arn,
       sourceipaddress,
       json_extract_scalar(requestparameters, '$.bucketName') AS bucket,
       json_extract_scalar(requestparameters, '$.key') AS object_key,
       errorcode,
       errormessage
FROM tenant_data_events
WHERE day BETWEEN date_format(current_date - INTERVAL '7' DAY, '%Y/%m/%d') AND date_format(current_date, '%Y/%m/%d')
  AND eventsource = 's3.amazonaws.com'
  AND errorcode IN ('AccessDenied', 'AccessDeniedException', 'KMS.AccessDeniedException')
ORDER BY eventtime DESC
LIMIT 500;
