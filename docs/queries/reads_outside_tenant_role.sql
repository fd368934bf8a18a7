-- Reads of tenant objects by any role other than a tenant role (expected: none, or the platform's
-- admin role during an investigation). Last 30 days.
SELECT eventtime,
       COALESCE(useridentity.sessioncontext.sessionissuer.arn, useridentity.arn) AS role_arn,
       useridentity.arn AS session_arn,
       sourceipaddress,
       json_extract_scalar(requestparameters, '$.bucketName') AS bucket,
       json_extract_scalar(requestparameters, '$.key') AS object_key,
       errorcode
FROM tenant_data_events
WHERE day BETWEEN date_format(current_date - INTERVAL '30' DAY, '%Y/%m/%d') AND date_format(current_date, '%Y/%m/%d')
  AND eventname IN ('GetObject', 'GetObjectVersion', 'HeadObject')
  AND COALESCE(useridentity.sessioncontext.sessionissuer.arn, useridentity.arn) NOT LIKE '%:role/${Prefix}/tenants/%'
ORDER BY eventtime DESC
LIMIT 500;
