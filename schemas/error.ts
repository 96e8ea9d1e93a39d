import { Type, type Static } from '@sinclair/typebox'

/** The one shape of every error this plugin answers. */
export const ErrorResponse = Type.Object(
  {
    statusCode: Type.Integer({ description: 'HTTP status code.', examples: [403] }),
    code: Type.String({ description: 'Stable machine-readable code.', examples: ['FAC_ERR_FORBIDDEN'] }),
    error: Type.String({ description: 'HTTP status text.', examples: ['Forbidden'] }),
    message: Type.String({ description: 'What went wrong, for a person.', examples: ['Not allowed to read this stream'] })
  },
  { $id: 'ActiveConversationsError', additionalProperties: false, description: 'Error body.' }
)
export type ErrorResponse = Static<typeof ErrorResponse>
