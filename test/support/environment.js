// The AWS SDK warns at length, once per process, that its 2027 releases will need Node 22; this
// project runs on Node 20.19+ on purpose (Lambda runs nodejs22.x), as `npm start` does (local/main.ts).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
