-- Who read, wrote or deleted what in one tenant's bucket over the last 7 days, newest first.
-- Replace REPLACE-WITH-TENANT (the tenant id); widen the day range as needed (one partition a day).
-- role_arn is the IAM role behind the session: <Prefix>/tenants/... = that tenant's role (SFTP user
-- or the ingest worker, told apart by session_arn); anything else deserves a question.
SELECT eventtime,
       eventname,
       COALESCE(useridentity.sessioncontext.sessionissuer.arn, useridentity.arn) AS role_arn,
       useridentity.arn AS session_arn,
       sourceipaddress,
       vpcendpointid,
       json_extract_scalar(requestparameters, '$.bucketName') AS bucket,
       json_extract_scalar(requestparameters, '$.key') AS object_key,
       errorcode,
       requestid
FROM tenant_data_events
WHERE day BETWEEN date_format(current_date - INTERVAL '7' DAY, '%Y/%m/%d') AND date_format(current_date, '%Y/%m/%d')
  AND eventsource = 's3.amazonaws.com'
  AND json_extract_scalar(requestparameters, '$.bucketName') LIKE '${Prefix}-t-REPLACE-WITH-TENANT-%'
ORDER BY eventtime DESC
LIMIT 1000;
