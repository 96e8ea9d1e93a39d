/**
 * The vendor page's sample response, verbatim: the 200 example of the API docs.
 * (Not typed as AgentView: the schema embeds it, which would make the type
 * circular; test/schemas.test.ts checks it against the schema instead.)
 */
export const VENDOR_SAMPLE_RESPONSE = {
  resolutionTime: 90,
  firstResponseTime: 50,
  responseTime: 50,
  firstName: 'Amanda',
  lastName: 'Jones',
  name: 'Amanda Jones',
  profImage: 'http://localhost/api/getMediaStream/market/f-2f4a86c4-f80f-5fac-99e1-78b0086c459f.png?n=8048409764&s=InNFTVBpZTZpcHpVTkJFLzIwMC9aemQ3d1NBakRVbXhuOGFWcmMrUGxDV2c9Ig$',
  onlineStatus: 'available',
  active: [
    {
      firstName: 'Amanda',
      lastName: 'Jones',
      skills: [{ id: 's-21223123', name: 'Sales' }],
      startTime: '2021-04-01T05:45:00.803Z',
      conversationId: 'c-1233',
      source: 'call',
      profImage: 'no-avatar',
      engagementTime: 1020,
      waitTime: 41445
    }
  ],
  queue: [
    {
      firstName: 'Amanda',
      lastName: 'Jones',
      skills: [{ id: 's-21223123', name: 'Sales' }],
      startTime: '2021-04-01T05:45:00.803Z',
      conversationId: 'c-1233',
      source: 'call',
      profImage: 'no-avatar',
      waitTime: 120
    }
  ]
}
